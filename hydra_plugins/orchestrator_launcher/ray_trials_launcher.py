"""Hydra Launcher `orchestrator` (the default of `orchestrate train -m`): each job of a multirun is a
training run on Ray, a child of one sweep run in MLflow.

    orchestrate train -m optimizer.lr=1e-3,3e-3 model.hidden_dim=32,64
    orchestrate train -m optimizer.lr=1e-3,3e-3 hydra.launcher.max_concurrent_trials=1

Every job's config is composed and checked before any trial starts: on the driver, and (whether its
objects build, which imports Lightning) in the Ray task processes the trials will reuse. Each trial then runs
Hydra's `run_job` (output dir, logging, the task function) inside a Ray task that holds no CPU itself,
so only the trial's Ray Train workers take CPUs: the launcher admits a trial when the cluster has CPUs
(and GPUs) free for all its workers, so trials run side by side, never oversubscribed, and a waiting
trial never holds resources another one needs. A trial of one CPU worker (no retries, no elastic range)
trains in its Ray task itself, which then holds that CPU (`in_process_trials`, orchestrator/runtime/in_process.py):
no worker group to start, and the task's process, reused by later trials, has Lightning imported. A
failed trial does not stop the others; the summary and the exit code (1) say how many failed. Re-running the
same sweep skips trials already FINISHED.
"""

import logging
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


@dataclass
class RayTrialsLauncherConf:
    """`hydra/launcher=orchestrator`.

    Attributes:
        max_concurrent_trials: at most this many trials at once (null: as many as the cluster's free
            CPUs/GPUs admit).
        metric: the metric the summary and the sweep run's best trial are ranked by.
        mode: "max" or "min" for metric.
        in_process_trials: a trial of one CPU worker trains in its own Ray task (Ray Train's local mode)
            instead of starting a Ray Train worker group of one.
    """

    _target_: str = "hydra_plugins.orchestrator_launcher.ray_trials_launcher.RayTrialsLauncher"
    max_concurrent_trials: Optional[int] = None
    metric: str = "val/acc"
    mode: str = "max"
    in_process_trials: bool = True


ConfigStore.instance().store(group="hydra/launcher", name="orchestrator", node=RayTrialsLauncherConf, provider="orchestrator")


def run_trial_job(hydra_context: HydraContext, sweep_config: DictConfig, task_function: TaskFunction, cwd: str) -> JobReturn:
    """Runs in a Ray task (num_cpus=0): one job, through Hydra's own run_job."""
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative paths of the job mean what they mean on the driver
    setup_globals()
    return run_job(
        hydra_context=hydra_context,
        task_function=task_function,
        config=sweep_config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


class RayTrialsLauncher(Launcher):
    """Runs a multirun's jobs as concurrent training runs on Ray (see the module docstring)."""

    def __init__(
        self, max_concurrent_trials: Optional[int] = None, metric: str = "val/acc", mode: str = "max", in_process_trials: bool = True
    ) -> None:
        self.in_process_trials = in_process_trials
        self.max_concurrent_trials = max_concurrent_trials
        self.metric = metric
        self.mode = mode
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from orchestrator.errors import OrchestratorError, report_and_exit

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        try:
            self._check_settings()
            return self._launch(job_overrides, initial_job_idx)
        except OrchestratorError as err:
            report_and_exit(err)

    def _check_settings(self) -> None:
        """The hydra.launcher.* values (checked here, not in __init__: Hydra would wrap the error)."""
        from orchestrator.errors import ConfigError

        if self.max_concurrent_trials is not None and self.max_concurrent_trials <= 0:
            raise ConfigError(
                "hydra.launcher.max_concurrent_trials",
                f"must be > 0, got {self.max_concurrent_trials}",
                "or null for as many as the cluster admits",
            )
        if self.mode not in ("max", "min"):
            raise ConfigError("hydra.launcher.mode", f"got {self.mode!r}", "use max or min")

    def _compose(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        from hydra.errors import ConfigCompositionException, OverrideParseException

        from orchestrator.errors import ConfigError
        from orchestrator.sweeps.sweep import prepare_trial

        trials = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            try:
                sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            except (ConfigCompositionException, OverrideParseException) as err:
                raise ConfigError(
                    " ".join(filter_overrides(overrides)),
                    str(err).splitlines()[0],
                    "check the swept key exists (orchestrate train --cfg job)",
                ) from err
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"{idx}"
                sweep_config.hydra.job.num = idx
            sweep_dir = Path(OmegaConf.select(sweep_config, "hydra.sweep.dir"))
            output_dir = str(sweep_dir / str(OmegaConf.select(sweep_config, "hydra.sweep.subdir")))
            trials.append((idx, list(overrides), prepare_trial(sweep_config, output_dir, buildable=False)))
        return trials

    def _launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray

        from orchestrator.runtime.cluster import check_fits, cluster_resources, connect
        from orchestrator.runtime.launch import user_code_runtime_env
        from orchestrator.runtime.trials import IN_PROCESS_ENV, PARENT_RUN_ENV
        from orchestrator.sweeps.sweep import (
            check_metric,
            check_on_cluster,
            close_sweep_run,
            find_sweep_run,
            finished_trials,
            open_sweep_run,
            print_sweep_summary,
            sweep_key,
            varying_params,
        )
        from orchestrator.tracking.store import run_tags
        from orchestrator.tracking.tags import TAG_CONFIG_HASH

        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        trials = self._compose(job_overrides, initial_job_idx)  # every job checked before any trial
        first = trials[0][2]
        check_metric(self.metric, "hydra.launcher.metric", str(first.config["model"].get("_target_", "")))

        swept = varying_params([t.config for _, _, t in trials])
        key = sweep_key(sorted(t.config_hash for _, _, t in trials))

        def finished_earlier() -> dict[str, str]:
            earlier = find_sweep_run(first.tracking_uri, first.typed.tracking.experiment, key)
            return finished_trials(first.tracking_uri, earlier[1], earlier[0]) if earlier else {}

        # Ray starts while a thread looks up the trials an earlier run of this sweep finished: starting an
        # embedded Ray is mostly waiting on its processes, and the lookup imports MLflow (seconds of CPU).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-lookup") as pool:
            lookup = pool.submit(finished_earlier)
            connect(first.typed.cluster, user_code_runtime_env(first.config))
            done = lookup.result()
        queue = deque((idx, overrides, trial) for idx, overrides, trial in trials if trial.config_hash not in done)
        num_skipped = len(trials) - len(queue)
        if queue:
            total = cluster_resources()
            for _, _, trial in queue:
                check_fits(trial.typed.scaling.num_workers, trial.typed.scaling.cpus_per_worker, trial.typed.scaling.use_gpu)
            check_on_cluster(
                [trial.config for _, _, trial in queue],
                first.tracking_uri,
                first.typed.tracking.timeout_s,
                slots=min(self.max_concurrent_trials or len(queue), int(total.get("CPU", 1))),
            )

        tags = {k: v for k, v in run_tags("sweep", {}).items() if k != TAG_CONFIG_HASH}
        params = {"sweep.launcher": "orchestrator", "sweep.num_trials": str(len(trials)), "sweep.params": ",".join(swept)}
        sweep_run_id, exp_id, _ = open_sweep_run(first.tracking_uri, first.typed.tracking.experiment, key, tags, params)
        log.info("sweep run %s: %d trials (%d already finished)", sweep_run_id, len(trials), num_skipped)

        returns = {
            idx: _skipped(trial, overrides, done[trial.config_hash]) for idx, overrides, trial in trials if trial.config_hash in done
        }
        for _, _, trial in queue:
            with read_write(trial.sweep_config.hydra.job.env_set), open_dict(trial.sweep_config.hydra.job.env_set):
                trial.sweep_config.hydra.job.env_set[PARENT_RUN_ENV] = sweep_run_id
                trial.sweep_config.hydra.job.env_set["MLFLOW_TRACKING_URI"] = trial.tracking_uri
                trial.sweep_config.hydra.job.env_set[IN_PROCESS_ENV] = "1" if self._in_process(trial) else "0"
        try:
            if queue:
                returns.update(self._run_admitted(ray, queue, total))
        finally:
            outcome = close_sweep_run(first.tracking_uri, exp_id, sweep_run_id, swept, self.metric, self.mode, num_skipped=num_skipped)
        print_sweep_summary(outcome, swept, self.metric, self.mode)
        if outcome.num_failed:
            from orchestrator.errors import EXIT_FAILED

            sys.exit(EXIT_FAILED)
        return [returns[idx] for idx, _, _ in trials]

    def _in_process(self, trial) -> bool:
        from orchestrator.runtime.trials import fits_in_process

        return self.in_process_trials and fits_in_process(trial.config["scaling"], trial.config["paths"]["storage_dir"])

    def _run_admitted(self, ray, queue: deque, total: dict[str, float]) -> dict[int, JobReturn]:
        """Start trials while the cluster has room for all their workers; collect them as they end."""
        remote_job = ray.remote(num_cpus=0, max_retries=0)(run_trial_job)
        cap = self.max_concurrent_trials or len(queue) or 1
        used = {"CPU": 0.0, "GPU": 0.0}
        running: dict[Any, tuple[int, list[str], Any, dict[str, float]]] = {}
        returns: dict[int, JobReturn] = {}
        cwd = os.getcwd()
        while queue or running:
            while queue and len(running) < cap:
                idx, overrides, trial = queue[0]
                need = _needs(trial.typed.scaling)
                if running and any(used[k] + need[k] > total.get(k, 0) for k in need):
                    break  # the head trial waits for room; later trials never jump ahead of it
                queue.popleft()
                log.info("trial #%d: %s", idx, " ".join(filter_overrides(overrides)))
                # a trial that trains in its task holds its CPUs there; any other holds none (its workers do)
                options = {"num_cpus": need["CPU"]} if self._in_process(trial) else {}
                ref = remote_job.options(**options).remote(self.hydra_context, trial.sweep_config, self.task_function, cwd)
                running[ref] = (idx, overrides, trial, need)
                for k in need:
                    used[k] += need[k]
            ready, _ = ray.wait(list(running), num_returns=1)
            idx, overrides, trial, need = running.pop(ready[0])
            for k in need:
                used[k] -= need[k]
            try:
                returns[idx] = ray.get(ready[0])
            except Exception as err:  # noqa: BLE001 (the trial's process died: that trial failed, the sweep goes on)
                log.error("trial #%d died: %s", idx, err)
                returns[idx] = _failed(trial, overrides, err)
            if returns[idx].status == JobStatus.FAILED:
                log.error("trial #%d failed: %s", idx, returns[idx]._return_value)
        return returns


def _needs(scaling) -> dict[str, float]:
    return {"CPU": float(scaling.num_workers * scaling.cpus_per_worker), "GPU": float(scaling.num_workers if scaling.use_gpu else 0)}


def _skipped(trial, overrides: list[str], run_id: str) -> JobReturn:
    ret = JobReturn(overrides=overrides, cfg=trial.sweep_config, status=JobStatus.COMPLETED)
    ret.return_value = run_id
    return ret


def _failed(trial, overrides: list[str], err: Exception) -> JobReturn:
    ret = JobReturn(overrides=overrides, cfg=trial.sweep_config, status=JobStatus.FAILED)
    ret.return_value = err
    return ret
