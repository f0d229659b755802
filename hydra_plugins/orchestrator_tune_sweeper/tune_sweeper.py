"""Hydra Sweeper `tune`: Hydra's sweep grammar becomes a Ray Tune search space; Ray Tune runs it.

    orchestrate train -m hydra/sweeper=tune hydra.sweeper.num_trials=20 \\
        'optimizer.lr=tag(log,interval(1e-4,1e-1))' 'model.hidden_dim=choice(32,64,128)'

Grammar -> search space: `choice(a,b)` and `a,b` -> tune.choice; `range(1,5)` -> tune.choice of its
values; `interval(lo,hi)` -> tune.uniform (tune.randint for `int(interval(...))`); `tag(log, interval(...))`
-> tune.loguniform / tune.lograndint. Other overrides are fixed for every trial.

Search: Optuna's TPE through Ray Tune's OptunaSearch (`search=optuna`, the default) or random
sampling (`search=random`); an ASHA scheduler on `metric`/`mode` stops weak trials early. Each trial is
a Tune function trainable holding no CPU that runs one Ray Train run (`orchestrator.training.run.train_prepared`,
the sweep run as parent); the run reports every epoch to Tune (ray.tune.integration.ray_train
.TuneReportCallback), so ASHA can act. Everything is checked before the first trial starts.
"""

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)

SEARCHES = ("optuna", "random")
TRIAL_MEMORY_BYTES = 64 * 1024**2  # what a trial's own process reserves (it composes configs, waits on Ray Train)


@dataclass
class TuneSweeperConf:
    """`hydra/sweeper=tune`.

    Attributes:
        num_trials: trials to run (Tune's num_samples).
        max_concurrent_trials: at most this many trials at once (null: as many as the cluster's CPUs
            hold workers of one trial).
        search: "optuna" (Optuna TPE through Ray Tune's OptunaSearch) or "random".
        metric: the metric trials are ranked by, and ASHA stops on; reported every epoch.
        mode: "max" or "min".
        grace_period: epochs every trial runs before ASHA may stop it.
        reduction_factor: ASHA keeps 1/reduction_factor of the trials at each rung.
        seed: seed of the search (null: the trials' `seed`), so re-running a sweep proposes the same trials.
    """

    _target_: str = "hydra_plugins.orchestrator_tune_sweeper.tune_sweeper.TuneSweeper"
    num_trials: int = 10
    max_concurrent_trials: Optional[int] = None
    search: str = "optuna"
    metric: str = "val/acc"
    mode: str = "max"
    grace_period: int = 1
    reduction_factor: int = 2
    seed: Optional[int] = None


ConfigStore.instance().store(group="hydra/sweeper", name="tune", node=TuneSweeperConf, provider="orchestrator")


def search_space(arguments: List[str]):
    """(fixed overrides, {key: Tune domain}, {key: two values to check before any trial}) from the
    command line's overrides. Raises ConfigError on grammar Tune cannot search."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException
    from ray import tune

    from orchestrator.errors import ConfigError

    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
    except OverrideParseException as err:
        raise ConfigError(
            "sweep overrides",
            str(err).splitlines()[0] + " " + " ".join(str(err).splitlines()[1:2]),
            "see https://hydra.cc/docs/advanced/override_grammar/extended/",
        ) from err
    fixed, space, probes = [], {}, {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        sweep = override.value()
        if override.is_interval_sweep():
            low, high = sweep.start, sweep.end
            if not low < high:
                raise ConfigError(key, f"interval({low}, {high}) is empty", "use interval(low, high) with low < high")
            log_scale = "log" in sweep.tags
            if log_scale and low <= 0:
                raise ConfigError(key, f"tag(log, interval({low}, {high})) needs low > 0", "raise the lower bound")
            integer = isinstance(low, int) and isinstance(high, int)
            if integer:
                space[key] = tune.lograndint(low, high) if log_scale else tune.randint(low, high)
            else:
                space[key] = tune.loguniform(low, high) if log_scale else tune.uniform(low, high)
            probes[key] = [low, high - 1 if integer else high]
        elif override.is_choice_sweep() or override.is_range_sweep():
            values = list(override.sweep_iterator())
            if not values:
                raise ConfigError(key, "the choice is empty", "give at least one value")
            space[key] = tune.choice(values)
            probes[key] = [values[0], values[-1]] if len(values) > 1 else values
        else:
            raise ConfigError(key, f"{override.input_line!r}: Tune cannot search this sweep", "use choice, range or interval")
    if not space:
        raise ConfigError(
            "sweep overrides", "nothing to search", "sweep at least one key, e.g. 'optimizer.lr=tag(log,interval(1e-4,1e-1))'"
        )
    return fixed, space, probes


def as_override(key: str, value: Any) -> str:
    if isinstance(value, float):
        return f"{key}={value!r}"
    if isinstance(value, str) and any(c in value for c in " ,()[]{}=\"'"):
        return f"{key}='{value}'"
    return f"{key}={value}"


def tune_trial(
    params: Dict[str, Any],
    hydra_context: HydraContext,
    base_config: DictConfig,
    fixed: List[str],
    sweep_run_id: str,
    experiment_id: str,
    tracking_uri: str,
    cwd: str,
    metric: str,
) -> None:
    """One Tune trial (a function trainable, no CPU of its own): compose the trial's config as Hydra
    would, and train it in a Ray Train run that reports every epoch to Tune. A trial whose config hash
    already FINISHED under this sweep run replays its recorded metric instead of training again."""
    from hydra.core.utils import setup_globals
    from mlflow import MlflowClient
    from ray import tune

    from orchestrator.sweeps.sweep import finished_trials, prepare_trial
    from orchestrator.tracking.tags import TAG_TRIAL_ID
    from orchestrator.training.run import train_prepared

    if os.path.isdir(cwd):
        os.chdir(cwd)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    setup_globals()
    trial_id = tune.get_context().get_trial_id()
    overrides = [*fixed, *(as_override(k, v) for k, v in params.items())]
    sweep_config = hydra_context.config_loader.load_sweep_config(base_config, overrides)
    output_dir = str(Path(str(sweep_config.hydra.sweep.dir)) / trial_id)
    trial = prepare_trial(sweep_config, output_dir)
    done = finished_trials(tracking_uri, experiment_id, sweep_run_id).get(trial.config_hash)
    if done:
        log.info("trial %s already FINISHED as run %s: replaying its %s", trial_id, done, metric)
        for point in MlflowClient(tracking_uri).get_metric_history(done, metric):
            tune.report({metric: point.value})
        return
    train_prepared(trial.typed, trial.config, trial.tracking_uri, parent_run_id=sweep_run_id, extra_tags={TAG_TRIAL_ID: trial_id})


def release_orphaned_placement_groups() -> int:
    """Remove the placement groups whose creating actor is dead: those of Ray Train runs whose trial
    Tune stopped early (stopping kills the trial and, with it, the run's controller). Ray Train's own
    PlacementGroupCleaner does this too, but it finds the cluster through the state API, which fails
    when several Ray instances run on one machine; the CPUs would then stay reserved and later
    trials would wait forever. Returns how many it removed."""
    import ray
    from ray._private.state import state
    from ray.core.generated.gcs_pb2 import PlacementGroupTableData
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    driver = ray.ActorID.nil().binary()  # what a PG created by a driver (Tune's own trial PGs) records
    removed = 0
    for raw in state._connect_and_get_accessor().get_placement_group_table():
        info = PlacementGroupTableData.FromString(raw)
        live = info.state in (PlacementGroupTableData.CREATED, PlacementGroupTableData.PENDING)
        by_actor = bool(info.creator_actor_id) and info.creator_actor_id != driver
        if live and by_actor and info.creator_actor_dead and not info.is_detached:
            remove_placement_group(PlacementGroup(ray.PlacementGroupID(info.placement_group_id)))
            removed += 1
    if removed:
        log.info("released %d placement group(s) of stopped trials", removed)
    return removed


def release_callback(interval_s: float = 2.0):
    """A Tune callback that releases stopped trials' placement groups every `interval_s` while the
    sweep runs (a class built here so that importing the plugin does not import Ray Tune)."""
    import time

    from ray import tune

    class _Release(tune.Callback):
        def __init__(self):
            self.last = 0.0

        def on_step_end(self, iteration, trials, **info):
            if time.monotonic() - self.last >= interval_s:
                self.last = time.monotonic()
                release_orphaned_placement_groups()

    return _Release()


class TuneSweeper(Sweeper):
    """Runs a sweep with Ray Tune (see the module docstring)."""

    def __init__(
        self,
        num_trials: int = 10,
        max_concurrent_trials: Optional[int] = None,
        search: str = "optuna",
        metric: str = "val/acc",
        mode: str = "max",
        grace_period: int = 1,
        reduction_factor: int = 2,
        seed: Optional[int] = None,
    ) -> None:
        self.num_trials = num_trials
        self.max_concurrent_trials = max_concurrent_trials
        self.search = search
        self.metric = metric
        self.mode = mode
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.seed = seed
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context

    def sweep(self, arguments: List[str]) -> Any:
        from orchestrator.errors import OrchestratorError, report_and_exit

        try:
            self._check_settings()
            return self._sweep(arguments)
        except OrchestratorError as err:
            report_and_exit(err)

    def _check_settings(self) -> None:
        """The hydra.sweeper.* values (checked here, not in __init__: Hydra would wrap the error)."""
        from orchestrator.errors import ConfigError

        if self.num_trials is None or self.num_trials <= 0:
            raise ConfigError("hydra.sweeper.num_trials", f"must be > 0, got {self.num_trials}", "e.g. hydra.sweeper.num_trials=20")
        if self.max_concurrent_trials is not None and self.max_concurrent_trials <= 0:
            raise ConfigError("hydra.sweeper.max_concurrent_trials", f"must be > 0, got {self.max_concurrent_trials}", "or null")
        if self.search not in SEARCHES:
            raise ConfigError("hydra.sweeper.search", f"got {self.search!r}", f"use one of {', '.join(SEARCHES)}")
        if self.mode not in ("max", "min"):
            raise ConfigError("hydra.sweeper.mode", f"got {self.mode!r}", "use max or min")
        if self.grace_period <= 0 or self.reduction_factor < 2:
            raise ConfigError("hydra.sweeper.grace_period", "grace_period must be > 0 and reduction_factor >= 2")

    def _check(self, fixed: List[str], probes: Dict[str, list]):
        """Compose and check the trial config at the ends of every swept range, before any trial."""
        from hydra.errors import ConfigCompositionException, OverrideParseException

        from orchestrator.errors import ConfigError
        from orchestrator.sweeps.sweep import check_metric, prepare_trial

        first = {k: v[0] for k, v in probes.items()}
        checked = []
        for key, values in probes.items():
            for value in values:
                overrides = [*fixed, *(as_override(k, value if k == key else v) for k, v in first.items())]
                try:
                    sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
                except (ConfigCompositionException, OverrideParseException) as err:
                    raise ConfigError(key, str(err).splitlines()[0], "check the key exists (orchestrate train --cfg job)") from err
                checked.append(prepare_trial(sweep_config, str(Path(str(sweep_config.hydra.sweep.dir)) / "check")))
        check_metric(self.metric, "hydra.sweeper.metric", str(checked[0].config["model"].get("_target_", "")))
        return checked[0]

    def _sweep(self, arguments: List[str]) -> Any:
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        from orchestrator.console import print_error
        from orchestrator.runtime.cluster import check_fits, cluster_resources, connect
        from orchestrator.runtime.launch import storage_path, user_code_runtime_env
        from orchestrator.sweeps.sweep import (
            children,
            close_sweep_run,
            open_sweep_run,
            print_sweep_summary,
            settle_trial,
            sweep_key,
        )
        from orchestrator.tracking.store import run_tags
        from orchestrator.tracking.tags import TAG_CONFIG_HASH, TAG_TRIAL_ID

        fixed, space, probes = search_space(arguments)
        first = self._check(fixed, probes)  # every bad input refused here, before Ray or MLflow
        typed, config, uri = first.typed, first.config, first.tracking_uri
        connect(typed.cluster, user_code_runtime_env(config))
        check_fits(typed.scaling.num_workers, typed.scaling.cpus_per_worker, typed.scaling.use_gpu)
        seed = self.seed if self.seed is not None else typed.seed

        key = sweep_key(
            {
                "sweeper": "tune",
                "search": self.search,
                "metric": self.metric,
                "mode": self.mode,
                "seed": seed,
                "arguments": sorted(arguments),
            }
        )
        tags = {k: v for k, v in run_tags("sweep", {}).items() if k != TAG_CONFIG_HASH}
        params = {
            "sweep.sweeper": "tune",
            "sweep.search": self.search,
            "sweep.num_trials": str(self.num_trials),
            "sweep.metric": self.metric,
            "sweep.mode": self.mode,
            "sweep.space": " ".join(arguments),
        }
        sweep_run_id, exp_id, _ = open_sweep_run(uri, typed.tracking.experiment, key, tags, params)

        worker_cpus = typed.scaling.num_workers * typed.scaling.cpus_per_worker
        concurrency = self.max_concurrent_trials or max(1, int(cluster_resources().get("CPU", 1) // worker_cpus))
        trainable = tune.with_parameters(
            tune_trial,
            hydra_context=self.hydra_context,
            base_config=self.config,
            fixed=fixed,
            sweep_run_id=sweep_run_id,
            experiment_id=exp_id,
            tracking_uri=uri,
            cwd=os.getcwd(),
            metric=self.metric,
        )
        swept = sorted(space)
        try:
            tuner = tune.Tuner(
                # No CPU for the trial itself (its Ray Train workers take the CPUs), or trials serialise;
                # Tune refuses an all-zero request, so it holds a little memory instead.
                tune.with_resources(trainable, {"cpu": 0, "memory": TRIAL_MEMORY_BYTES}),
                param_space=space,
                tune_config=tune.TuneConfig(
                    search_alg=self._search_alg(seed),
                    scheduler=ASHAScheduler(
                        time_attr="training_iteration",
                        metric=self.metric,
                        mode=self.mode,
                        # ASHA stops every trial that reaches max_t: one past the last epoch lets a
                        # trial that was never stopped finish on its own (and log its model).
                        max_t=typed.trainer.max_epochs + 1,
                        grace_period=self.grace_period,
                        reduction_factor=self.reduction_factor,
                    ),
                    num_samples=self.num_trials,
                    max_concurrent_trials=concurrency,
                ),
                run_config=tune.RunConfig(
                    name=f"sweep-{sweep_run_id}",
                    storage_path=storage_path(typed.paths.storage_dir),
                    verbose=0,
                    callbacks=[release_callback()],
                ),
            )
            log.info(
                "sweep run %s: %d trials with %s search, ASHA on %s (%s), %d at a time",
                sweep_run_id,
                self.num_trials,
                self.search,
                self.metric,
                self.mode,
                concurrency,
            )
            results = tuner.fit()
            errors = {r.metrics.get("trial_id"): r.error for r in results if r.metrics}
            num_errors = sum(r.error is not None for r in results)
            for run in children(uri, exp_id, sweep_run_id):
                trial_id = run.data.tags.get(TAG_TRIAL_ID)
                if trial_id in errors:  # Tune says why it ended: no error means the scheduler stopped it
                    settle_trial(uri, run.info.run_id, early_stopped=errors[trial_id] is None)
        finally:
            outcome = close_sweep_run(uri, exp_id, sweep_run_id, swept, self.metric, self.mode)
        print_sweep_summary(outcome, swept, self.metric, self.mode)
        num_lost = num_errors - sum(t.status == "FAILED" for t in outcome.trials)
        if num_lost > 0:  # trials that failed before their training run was created
            print_error(f"{num_lost} of {self.num_trials} trials failed before training; see the errors above")
        if outcome.num_failed or num_lost > 0:
            from orchestrator.errors import EXIT_FAILED

            sys.exit(EXIT_FAILED)
        return outcome

    def _search_alg(self, seed: int):
        if self.search == "random":
            from ray.tune.search.basic_variant import BasicVariantGenerator

            return BasicVariantGenerator(random_state=seed)
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(metric=self.metric, mode=self.mode, seed=seed)
