"""Launch one training run on Ray Train: TorchTrainer over `worker.train_loop_per_worker`."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import signal
import site
import sys
import threading
from pathlib import Path
from typing import Any

from orchestrator.errors import RunInterrupted

log = logging.getLogger(__name__)

INSTALLED_ROOTS = tuple({Path(p).resolve() for p in [*site.getsitepackages(), sys.prefix, sys.base_prefix]})
PROJECT_PACKAGES = ("orchestrator", "trainers")
ELASTIC_START_RETRIES = 3


def _targets(node: Any):
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield node["_target_"]
        for value in node.values():
            yield from _targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value)


def user_code_runtime_env(config: dict[str, Any]) -> dict[str, Any]:
    """`py_modules` for every `_target_` whose code is the user's own (not installed), so it reaches
    the workers on a local or a remote cluster alike. Found without importing it (a LitModule's module
    imports Lightning: seconds this process may not otherwise spend)."""
    modules: list[str] = []
    for target in _targets(config):
        top = target.split(".", 1)[0]
        if top in PROJECT_PACKAGES or top in sys.builtin_module_names:
            continue
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):  # the config check reports it
            continue
        if spec is None or not spec.origin or not spec.has_location:
            continue
        path = Path(spec.origin).resolve()
        if any(path.is_relative_to(root) for root in INSTALLED_ROOTS):
            continue
        modules.append(str(path.parent if path.name == "__init__.py" else path))
    return {"py_modules": sorted(set(modules))} if modules else {}


def storage_path(storage_dir: str) -> str:
    """Ray Train's storage_path: URIs (s3://, gs://) as given, local paths absolute."""
    if "://" in storage_dir:
        return storage_dir
    return str(Path(storage_dir).expanduser().resolve())


@contextlib.contextmanager
def sigterm_as_sigint():
    """SIGTERM takes the same path as Ctrl-C: Ray Train's own SIGINT handler (installed by
    `TorchTrainer.fit` in the main thread) aborts the controller and the workers gracefully."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum, frame):
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def in_tune_trial() -> bool:
    """This code runs in a trial of the `tune` sweeper whose session Tune has not ended. Tune ends it
    first when its scheduler stops the trial, then removes the trial's placement group (which kills
    the run's controller): a trial that was in one and is no longer was stopped, not failed."""
    from ray.tune.trainable.trainable_fn_utils import _in_tune_session

    return bool(_in_tune_session())


def _tune_callbacks() -> list:
    """Inside a trial of the `tune` sweeper, forward every epoch's report to Ray Tune (so its scheduler
    can stop weak trials early); elsewhere, nothing."""
    if not in_tune_trial():
        return []
    from ray.tune.integration.ray_train import TuneReportCallback

    return [TuneReportCallback()]


def start_retries(scaling: dict[str, Any]) -> int:
    """How often a worker group that could not start (Ray waits RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S,
    60 s) is tried again. Ray's default is forever, which after a lost node is a hang. A fixed-size run
    fails at once: the CPUs checked before it started are gone. An elastic run retries a few times,
    because Ray may size its restart by a node that is dead but not yet declared dead. Waiting for the
    cluster to grow (an autoscaler) is asked for with scaling.wait_for_resources."""
    if scaling["wait_for_resources"]:
        return -1
    return ELASTIC_START_RETRIES if scaling.get("min_workers") else 0


def trainer_class():
    """Ray's TorchTrainer, less the DatasetManager actor Ray Train V2 starts for every run even when the
    run passes no Ray Datasets (the DataModule loads the data here): one Python process fewer per run
    (it imports Ray Data), a part of a short sweep trial's start (benchmarks/RESULTS.md, sweep).
    Overrides a private method of Ray 2.60 (pinned); runs that pass `datasets` keep it."""
    from ray.train.torch import TorchTrainer
    from ray.train.v2._internal.callbacks import DatasetsCallback

    class Trainer(TorchTrainer):
        def _create_default_callbacks(self):
            callbacks = super()._create_default_callbacks()
            return callbacks if self.datasets else [c for c in callbacks if not isinstance(c, DatasetsCallback)]

    return Trainer


def streamed_datasets(config: dict[str, Any]) -> dict[str, Any] | None:
    """The train and val splits as Ray Datasets when the run's data streams (data=parquet), for Ray Train
    to split into one equal shard per worker; None for a DataModule that loads its own data.

    Ray Data's tasks reserve a CPU each by default. When the workers reserve every CPU of the cluster
    (2 workers on 2 CPUs), no read task would ever be scheduled and the run would wait forever: its
    tasks then reserve none and share the workers' cores, which wait for their batches meanwhile."""
    from orchestrator.config.build import build_datamodule, streams_data
    from orchestrator.runtime.cluster import cluster_resources

    if not streams_data(config):
        return None
    scaling = config["scaling"]
    spare = cluster_resources().get("CPU", 0) - scaling["num_workers"] * scaling["cpus_per_worker"]
    if spare < 1:
        log.info("data: the workers reserve every CPU of the cluster; Ray Data's tasks share them")
    return build_datamodule(config).ray_datasets(task_cpus=None if spare >= 1 else 0)


def fit_on_ray(config: dict[str, Any], run_id: str, tracking_uri: str):
    """Run the training on the connected Ray cluster. Returns Ray's Result.

    Raises TrainingFailedError when workers fail past `scaling.max_failures`, and RunInterrupted on
    Ctrl-C or SIGTERM (workers stopped, checkpoints kept: `orchestrate resume RUN_ID` continues).
    A second fit with the same run id resumes from the run's storage (Ray Train V2 restores its
    checkpoint snapshot when RunConfig name and storage_path match)."""
    from ray.train import (
        CheckpointConfig,
        FailureConfig,
        LoggingConfig,
        RunConfig,
        ScalingConfig,
    )
    from ray.train.torch import TorchConfig

    from orchestrator.runtime import in_process
    from orchestrator.runtime.checkpoints import policy
    from orchestrator.runtime.worker import train_loop_per_worker

    scaling = config["scaling"]
    keep = policy(config)
    # a grid trial of one worker trains in its own Ray task (Ray Train's local mode: num_workers=0)
    in_process_dir = Path(storage_path(config["paths"]["storage_dir"])) / run_id if in_process.wanted(config) else None
    if in_process_dir:
        log.info("training in this process (Ray Train local mode), checkpoints in %s", in_process_dir)
    trainer = trainer_class()(
        train_loop_per_worker,
        datasets=None if in_process_dir else streamed_datasets(config),
        train_loop_config={
            "config": config,
            "run_id": run_id,
            "tracking_uri": tracking_uri,
            "in_process_dir": str(in_process_dir) if in_process_dir else None,
        },
        torch_config=TorchConfig(backend="nccl" if scaling["use_gpu"] else "gloo"),
        scaling_config=ScalingConfig(
            # (min, max) makes the run elastic: it goes on with fewer workers when nodes go away.
            num_workers=0
            if in_process_dir
            else (scaling["min_workers"], scaling["num_workers"])
            if scaling.get("min_workers")
            else scaling["num_workers"],
            use_gpu=scaling["use_gpu"],
            resources_per_worker={"CPU": scaling["cpus_per_worker"]},
        ),
        run_config=RunConfig(
            name=run_id,  # Ray's run folder is named after the MLflow run: one id for both
            storage_path=storage_path(config["paths"]["storage_dir"]),
            logging_config=LoggingConfig(log_level="WARNING"),  # per-epoch lines come from EpochSummary
            callbacks=_tune_callbacks(),
            failure_config=FailureConfig(max_failures=scaling["max_failures"], controller_failure_limit=start_retries(scaling)),
            checkpoint_config=CheckpointConfig(
                num_to_keep=keep.num_to_keep,
                checkpoint_score_attribute=keep.monitor,
                checkpoint_score_order=keep.mode,
            ),
        ),
    )
    try:
        with sigterm_as_sigint():
            result = trainer.fit()
        return in_process.result(in_process_dir) if in_process_dir else result
    except (KeyboardInterrupt, SystemExit) as err:  # Ray's SIGINT handler exits with SystemExit(0)
        raise RunInterrupted(
            f"run {run_id} interrupted: workers stopped, checkpoints kept in {storage_path(config['paths']['storage_dir'])}/{run_id}; "
            f"continue it with: orchestrate resume {run_id}"
        ) from err
