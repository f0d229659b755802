"""The sweep run: one MLflow run per sweep, its trials as child runs, the best trial recorded on it.

Shared by both sweep plugins (the Ray launcher behind `orchestrate train -m` and the `tune` sweeper):
- `check_on_cluster` (the grid launcher) builds every trial's objects and opens the tracking store
  before any trial starts, in the Ray processes the trials will reuse;
- `open_sweep_run` finds the sweep run of the same sweep definition (tag `orchestrator.sweep_key`) or
  creates it, so re-running a sweep after an interruption continues under the same run;
- `finished_trials` lists the config hashes already trained to the end, which a re-run skips;
- `close_sweep_run` settles trials left RUNNING, counts each trial once (its latest attempt), records
  the best trial, plots the metric against every swept parameter, prints the summary, and ends the
  sweep run FINISHED (FAILED if a trial failed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from orchestrator.tracking.runs import log_config
from orchestrator.tracking.store import set_tag_once
from orchestrator.tracking.tags import (
    TAG_BEST_RUN,
    TAG_CONFIG_HASH,
    TAG_EARLY_STOPPED,
    TAG_ERROR,
    TAG_KIND,
    TAG_PARENT,
    TAG_SWEEP_KEY,
)

log = logging.getLogger(__name__)

# What the bundled LitModules report every epoch: a sweep metric must be one of these (or the
# model is the user's own, whose metrics are unknown before it runs).
REPORTED_METRICS = ("val/acc", "val/loss", "val/f1", "val/precision", "val/recall", "train/loss", "train/acc")


@dataclass
class Trial:
    """One trial as MLflow recorded it."""

    run_id: str
    status: str
    params: dict[str, str]
    metric: float | None
    early_stopped: bool = False
    config_hash: str = ""
    error: str = ""


@dataclass
class SweepOutcome:
    """What a sweep left in MLflow."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    trials: list[Trial] = field(default_factory=list)
    best: Trial | None = None
    num_skipped: int = 0

    @property
    def num_failed(self) -> int:
        return sum(t.status != "FINISHED" for t in self.trials)


def sweep_key(definition: Any) -> str:
    """A stable hash of what defines a sweep (its trials' configs, or its search space and settings)."""
    return hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_metric(metric: str, key: str, model_target: str) -> None:
    """Refuse, before any trial, a metric the bundled models never report."""
    from orchestrator.errors import ConfigError

    if model_target.startswith("trainers.") and metric not in REPORTED_METRICS:
        raise ConfigError(key, f"trials never report {metric!r}", f"choose one of {', '.join(REPORTED_METRICS)}")


def find_sweep_run(tracking_uri: str, experiment: str, key: str) -> tuple[str, str] | None:
    """(run id, experiment id) of the latest sweep run of sweep `key`, if there is one. Creates nothing."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found_experiment = client.get_experiment_by_name(experiment)
    if found_experiment is None:
        return None
    found = client.search_runs(
        [found_experiment.experiment_id],
        filter_string=f"tags.`{TAG_SWEEP_KEY}` = '{key}' and tags.`{TAG_KIND}` = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return (found[0].info.run_id, found_experiment.experiment_id) if found else None


def open_sweep_run(tracking_uri: str, experiment: str, key: str, tags: dict[str, str], params: dict[str, str]) -> tuple[str, str, bool]:
    """The sweep run for sweep `key`: the existing one (resumed, status RUNNING) or a new one.
    Returns (run id, experiment id, whether it was resumed)."""
    from mlflow import MlflowClient

    from orchestrator.tracking.store import experiment_id

    client = MlflowClient(tracking_uri)
    exp_id = experiment_id(client, experiment)  # restores a deleted experiment
    found = find_sweep_run(tracking_uri, experiment, key)
    if found:
        run_id = found[0]
        client.update_run(run_id, status="RUNNING")
        log.info("resuming sweep run %s", run_id)
        return run_id, exp_id, True
    run = client.create_run(exp_id, tags={**tags, TAG_KIND: "sweep", TAG_SWEEP_KEY: key})
    log_config(client, run.info.run_id, None, params)
    return run.info.run_id, exp_id, False


def children(tracking_uri: str, experiment_id: str, sweep_run_id: str):
    """The trial runs of a sweep run (MLflow Run objects)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri).search_runs(
        [experiment_id], filter_string=f"tags.`{TAG_PARENT}` = '{sweep_run_id}'", max_results=10000
    )


def finished_trials(tracking_uri: str, experiment_id: str, sweep_run_id: str) -> dict[str, str]:
    """{config hash: run id} of the trials of this sweep that ended FINISHED (trained to the end, or
    stopped early by the search's scheduler: their metrics are what the search needs)."""
    return {
        run.data.tags[TAG_CONFIG_HASH]: run.info.run_id
        for run in children(tracking_uri, experiment_id, sweep_run_id)
        if run.info.status == "FINISHED" and TAG_CONFIG_HASH in run.data.tags
    }


def settle_trial(tracking_uri: str, run_id: str, early_stopped: bool) -> None:
    """End a trial run that Tune stopped. A trial the scheduler stopped on purpose ends FINISHED with
    orchestrator.early_stopped=true, whatever its own process managed to record while being stopped
    (a graceful stop raises inside the trial, so its run context may already have said FAILED). A
    trial left RUNNING that was not stopped on purpose ends KILLED."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    if run.info.status == "FINISHED" or (not early_stopped and run.info.status != "RUNNING"):
        return
    set_tag_once(client, run_id, TAG_EARLY_STOPPED, "true" if early_stopped else "false")
    if early_stopped and TAG_ERROR in run.data.tags:
        client.delete_tag(run_id, TAG_ERROR)
    client.set_terminated(run_id, "FINISHED" if early_stopped else "KILLED")


def latest_attempts(runs: list) -> list:
    """The trial runs that count: a re-run sweep leaves a trial's earlier FAILED or KILLED runs behind,
    which its later attempt (same config hash) supersedes. FINISHED runs always count."""

    def trial(run) -> str:
        return run.data.tags.get(TAG_CONFIG_HASH) or run.info.run_id

    latest: dict[str, Any] = {}
    for run in runs:
        if trial(run) not in latest or (run.info.start_time or 0) > (latest[trial(run)].info.start_time or 0):
            latest[trial(run)] = run
    return [run for run in runs if run.info.status == "FINISHED" or run is latest[trial(run)]]


def close_sweep_run(
    tracking_uri: str, experiment_id: str, sweep_run_id: str, swept: list[str], metric: str, mode: str, num_skipped: int = 0
) -> SweepOutcome:
    """Record the best trial and the metric-vs-parameter plot on the sweep run, and end it."""
    from mlflow import MlflowClient

    from orchestrator.sweeps import plots as sweep_plots

    client = MlflowClient(tracking_uri)
    outcome = SweepOutcome(sweep_run_id, experiment_id, tracking_uri, num_skipped=num_skipped)
    for run in latest_attempts(children(tracking_uri, experiment_id, sweep_run_id)):
        status = run.info.status
        if status == "RUNNING":  # a trial whose process died: never leave it RUNNING
            client.set_terminated(run.info.run_id, "KILLED")
            status = "KILLED"
        value = run.data.metrics.get(metric)
        outcome.trials.append(
            Trial(
                run_id=run.info.run_id,
                status=status,
                params={k: run.data.params.get(k, "-") for k in swept},
                metric=value if value is not None and math.isfinite(value) else None,
                early_stopped=run.data.tags.get(TAG_EARLY_STOPPED) == "true",
                config_hash=run.data.tags.get(TAG_CONFIG_HASH, ""),
                error=run.data.tags.get(TAG_ERROR, ""),
            )
        )
    scored = [t for t in outcome.trials if t.status == "FINISHED" and t.metric is not None]
    if scored:
        outcome.best = (max if mode == "max" else min)(scored, key=lambda t: t.metric)
        client.set_tag(sweep_run_id, TAG_BEST_RUN, outcome.best.run_id)
        client.log_metric(sweep_run_id, f"best/{metric}", outcome.best.metric)
        points = [(t.params, t.metric) for t in scored]
        figure = sweep_plots.metric_vs_params(points, swept, metric)
        client.log_figure(sweep_run_id, figure, "plots/metric_vs_params.png")
    client.log_metric(sweep_run_id, "num_trials", len(outcome.trials))
    client.log_metric(sweep_run_id, "num_failed_trials", outcome.num_failed)
    client.set_terminated(sweep_run_id, "FINISHED" if outcome.num_failed == 0 else "FAILED")
    return outcome


def print_sweep_summary(outcome: SweepOutcome, swept: list[str], metric: str, mode: str) -> None:
    """A table of the trials, best first (trial run, metric, swept params, status), and how to look at them."""
    from orchestrator.console import (
        Column,
        console,
        print_error,
        print_table,
        run_url,
        ui_command,
    )

    columns = [
        Column("trial run", required=True, shorten=True),
        Column(metric, justify="right", required=True),
        *(Column(key, justify="right") for key in swept),
        Column("status"),
    ]
    sign = -1 if mode == "max" else 1
    ordered = sorted(outcome.trials, key=lambda t: (t.metric is None, sign * (t.metric or 0.0)))
    rows, styles = [], []
    for trial in ordered:
        status = trial.status + (" (early stopped)" if trial.early_stopped else "")
        best = outcome.best and trial.run_id == outcome.best.run_id
        styles.append("bold green" if best else ("red" if trial.status != "FINISHED" else None))
        rows.append(
            [trial.run_id, "-" if trial.metric is None else f"{trial.metric:.4f}", *(trial.params.get(k, "-") for k in swept), status]
        )
    print_table(
        f"sweep run {outcome.run_id}: {len(outcome.trials)} trials",
        columns,
        rows,
        see_all=f"`orchestrate compare --parent {outcome.run_id} --json`",
        row_styles=styles,
    )
    if outcome.num_skipped:
        console.print(f"{outcome.num_skipped} trial(s) already FINISHED in an earlier run of this sweep were skipped")
    if outcome.best:
        console.print(f"best trial: {outcome.best.run_id} ({metric} = {outcome.best.metric:.4f})", soft_wrap=True)
    command, base_url = ui_command(outcome.tracking_uri)
    if command:
        console.print(f"open the UI: {command}", soft_wrap=True)
    console.print(f"then browse: {run_url(base_url, outcome.experiment_id, outcome.run_id)}", soft_wrap=True)
    if outcome.num_failed:
        failed = [t for t in outcome.trials if t.status != "FINISHED"]
        for trial in failed:
            print_error(f"trial {trial.run_id} {trial.status}: {trial.error or 'see its run in MLflow'}")
        print_error(f"{outcome.num_failed} of {len(outcome.trials)} trials failed")


@dataclass
class PreparedTrial:
    """One trial's config, checked on the driver before any trial starts (its objects: on the cluster)."""

    sweep_config: Any  # the job's full DictConfig, hydra node included (what run_job receives)
    config: dict  # resolved plain config (what the workers receive)
    typed: Any  # the validated TrainConfig
    tracking_uri: str
    config_hash: str


def prepare_trial(sweep_config, output_dir: str, buildable: bool = True) -> PreparedTrial:
    """Check one job's config as `orchestrate train` would (schema, tracking store, resources and,
    with `buildable`, its objects), with Hydra's runtime filled in as run_job will fill it. The grid
    launcher builds the objects on the cluster instead (`check_on_cluster`)."""
    import copy

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from orchestrator.config.prepare import prepare
    from orchestrator.tracking.store import config_hash

    with read_write(sweep_config.hydra.runtime):
        sweep_config.hydra.runtime.output_dir = output_dir
    HydraConfig.instance().set_config(sweep_config)
    task_cfg = copy.deepcopy(sweep_config)
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    typed, config, uri = prepare(task_cfg, buildable=buildable)
    return PreparedTrial(sweep_config, config, typed, uri, config_hash(config))


def check_on_cluster(configs: list[dict], tracking_uri: str, timeout_s: float, slots: int) -> None:
    """Before any trial starts, in `slots` Ray tasks of one CPU each (configs shared out among them):
    `build.check_buildable` for every config, and the tracking store opened as the trials will open it.
    The trials' Ray task processes do this, not the driver: building imports Lightning and opening a store
    imports MLflow and connects (seconds of CPU each), and Ray keeps those processes for the trials,
    which then start with both done, while the driver never imports Lightning. It also checks the
    store from where the trials run. Raises a failing config's error."""
    import ray

    from orchestrator.errors import OrchestratorError

    slots = max(1, min(slots, len(configs)))
    remote = ray.remote(num_cpus=1, max_retries=0)(_check_in_trial_process)
    try:
        ray.get([remote.remote(configs[i::slots], tracking_uri, timeout_s) for i in range(slots)])
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, OrchestratorError):
            raise err.cause from None
        raise


def _check_in_trial_process(configs: list[dict], tracking_uri: str, timeout_s: float) -> None:
    from mlflow import MlflowClient

    from orchestrator.config.build import check_buildable
    from orchestrator.logs import quiet_libraries
    from orchestrator.tracking.store import check_reachable

    quiet_libraries()
    for config in configs:
        check_buildable(config)
    check_reachable(tracking_uri, timeout_s)
    MlflowClient(tracking_uri)  # MLflow keeps the store (a SQLite engine, say) for this process's trials


def varying_params(configs: list[dict]) -> list[str]:
    """The param keys whose values differ between trials (what the sweep swept)."""
    from orchestrator.tracking.runs import differing_params, run_params

    return differing_params([run_params(c) for c in configs])
