"""One training run on the driver: validate, connect to Ray, open the MLflow run, fit on Ray, then log
the outcome (checkpoints, the test split's metrics, plots, the model) into the same run."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from orchestrator.config.prepare import prepare, worker_request
from orchestrator.errors import RunInterrupted, TrainingError
from orchestrator.tracking.tags import TAG_ERROR, TAG_STOP_REASON

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    """What one training run left behind."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    storage_path: str | None = None
    stop_reason: str | None = None


TRACKED_CURVES = ("train/loss", "val/loss", "train/acc", "val/acc")


def run_train(cfg: DictConfig, parent_run_id: str | None = None, extra_tags: dict[str, str] | None = None) -> TrainOutcome:
    """Validate, connect to Ray, create the MLflow run, train on Ray, then evaluate and log the model."""
    return train_prepared(*prepare(cfg), parent_run_id=parent_run_id, extra_tags=extra_tags)


def train_prepared(
    typed, config: dict[str, Any], uri: str, parent_run_id: str | None = None, extra_tags: dict[str, str] | None = None
) -> TrainOutcome:
    """run_train for a config that prepare() (or a caller's equivalent checks) already passed."""
    import mlflow
    from mlflow import MlflowClient

    from orchestrator.logs import quiet_libraries
    from orchestrator.tracking.runs import log_config, opening_tags
    from orchestrator.tracking.store import experiment_id

    quiet_libraries()  # after the checks: it imports Lightning (seconds), which a bad value need not wait for
    connect_for(typed, config)
    streamed = prepare_streamed_data(config)
    mlflow.set_tracking_uri(uri)
    exp_id = experiment_id(MlflowClient(uri), typed.tracking.experiment)
    with mlflow.start_run(
        experiment_id=exp_id,
        run_name=typed.tracking.run_name,
        tags=opening_tags("train", config, extra_tags),
        parent_run_id=parent_run_id,
    ) as run:
        log_config(MlflowClient(uri), run.info.run_id, config)
        if streamed is not None:
            from orchestrator.tracking.inputs import log_streamed_inputs

            log_streamed_inputs(MlflowClient(uri), run.info.run_id, streamed)
        return train_in_run(config, run.info.run_id, exp_id, uri, typed.tracking.log_model)


def prepare_streamed_data(config: dict[str, Any]):
    """For data that streams through Ray Data (data=parquet), once Ray is up and before the run opens:
    one pass over the data for its rows per split, classes and feature statistics (kept in the config as
    `data.stats`, so workers, evaluation and `orchestrate resume` use the same), checked to give every
    worker a batch, and the model built with the real classes. Returns the DataModule, or None."""
    from orchestrator.config.build import build_datamodule, build_model, streams_data

    if not streams_data(config):
        return None
    datamodule = build_datamodule(config)
    rows = datamodule.stats["rows"]
    log.info("data: %s rows train / %s val / %s test in %s", rows["train"], rows["val"], rows["test"], config["data"]["path"])
    datamodule.check_rows(config["scaling"]["num_workers"])
    build_model(config, datamodule)
    config["data"]["stats"] = datamodule.stats
    return datamodule


def connect_for(typed, config: dict[str, Any]) -> None:
    """Start or join Ray for this run, and refuse a request the cluster can never satisfy."""
    from orchestrator.runtime.cluster import check_fits, connect
    from orchestrator.runtime.launch import user_code_runtime_env

    log.info("training on %s", connect(typed.cluster, user_code_runtime_env(config)))
    if not typed.scaling.wait_for_resources:
        check_fits(*worker_request(typed.scaling))


def train_in_run(config: dict[str, Any], run_id: str, exp_id: str, uri: str, log_model: bool) -> TrainOutcome:
    """Inside the active MLflow run `run_id`: fit on Ray (resuming from the run's storage if it has
    checkpoints), then log the outcome. An interrupted run ends KILLED, a failed one FAILED with the
    error as tag `orchestrator.error`, and a Tune trial its scheduler stopped FINISHED, early-stopped."""
    import mlflow

    from orchestrator.runtime.launch import fit_on_ray, in_tune_trial

    tune_trial = in_tune_trial()
    try:
        result = fit_on_ray(config, run_id, uri)
        return _log_outcome(config, result, TrainOutcome(run_id, exp_id, uri), log_model)
    except (RunInterrupted, KeyboardInterrupt) as err:
        mlflow.set_tag(TAG_ERROR, f"interrupted: {err}"[:5000])
        mlflow.end_run("KILLED")
        if isinstance(err, RunInterrupted):
            raise
        raise RunInterrupted(f"run {run_id} interrupted; continue it with: orchestrate resume {run_id}") from err
    except Exception as err:
        if tune_trial and not in_tune_trial():
            # Tune's scheduler stopped this trial while it trained: record what the sweeper records for
            # it (sweep.settle_trial) here too, as this thread may write after the sweeper has.
            from orchestrator.tracking.store import set_tag_once
            from orchestrator.tracking.tags import TAG_EARLY_STOPPED

            try:
                set_tag_once(mlflow.MlflowClient(uri), run_id, TAG_EARLY_STOPPED, "true")
            finally:
                mlflow.end_run("FINISHED")
            return TrainOutcome(run_id, exp_id, uri)
        from ray.train import TrainingFailedError

        summary = summarize_failure(err, config["scaling"]) if isinstance(err, TrainingFailedError) else f"{err.__class__.__name__}: {err}"
        mlflow.set_tag(TAG_ERROR, summary[:5000])
        if isinstance(err, TrainingFailedError):
            raise TrainingError(f"training failed in run {run_id} (it is FAILED; its checkpoints are kept): {summary}") from err
        raise


def summarize_failure(err: Exception, scaling: dict[str, Any]) -> str:
    """One line per distinct worker error ("ranks 0,1: NonFiniteLossError: ..."), not Ray's tracebacks;
    for a worker group that could not start, what the cluster lacks and the keys that fix it."""
    cause = getattr(err, "controller_failure", None)
    if cause is not None and type(cause).__name__ in ("WorkerGroupStartupTimeoutError", "WorkerGroupStartupFailedError"):
        workers = (
            f"scaling.min_workers={scaling['min_workers']}"
            if scaling.get("min_workers")
            else f"scaling.num_workers={scaling['num_workers']}"
        )
        fix = "a lower scaling.min_workers" if scaling.get("min_workers") else "scaling.min_workers"
        return (
            f"{type(cause).__name__}: the cluster no longer has room for {workers} x scaling.cpus_per_worker="
            f"{scaling['cpus_per_worker']} (was a node lost?); set {fix} to go on with fewer workers, or "
            "scaling.wait_for_resources=true to wait for the cluster to grow"
        )
    failures = getattr(err, "worker_failures", None)
    if not failures:
        return str(err).strip().splitlines()[-1]
    by_message: dict[str, list[int]] = {}
    for rank, failure in sorted(failures.items()):
        cause = getattr(failure, "cause", None) or failure
        lines = [line for line in str(cause).strip().splitlines() if line.strip()]
        message = f"{type(cause).__name__}: {lines[-1] if lines else ''}"
        by_message.setdefault(message, []).append(rank)
    return "; ".join(f"rank{'s' if len(r) > 1 else ''} {','.join(map(str, r))}: {m}" for m, r in by_message.items())


def _checkpoint_file(checkpoint, folder: Path, name: str) -> Path:
    from orchestrator.runtime.checkpoints import CHECKPOINT_NAME

    with checkpoint.as_directory() as source:
        target = folder / name
        shutil.copyfile(Path(source) / CHECKPOINT_NAME, target)
    return target


def early_stop_reason(config: dict[str, Any], last_metrics: dict[str, Any]) -> str | None:
    """ "stopped at epoch 7 of 12: val/acc did not improve for 5 epochs" when the run's early stopping
    ended it before trainer.max_epochs (its last report's `epoch` says how far it got); else None."""
    stopping = (config.get("callbacks") or {}).get("early_stopping")
    max_epochs = config["trainer"]["max_epochs"]
    epochs = int(last_metrics.get("epoch", max_epochs - 1)) + 1
    if not isinstance(stopping, dict) or epochs >= max_epochs or config["trainer"].get("max_steps", -1) > 0:
        return None
    return (
        f"stopped at epoch {epochs} of {max_epochs}: {stopping.get('monitor', 'val_loss')} did not improve "
        f"for {stopping.get('patience', 3)} epochs"
    )


def _log_outcome(config: dict, result, outcome: TrainOutcome, log_model: bool) -> TrainOutcome:
    """On the driver, after fit: checkpoints, test metrics of the best checkpoint, plots and the model."""
    import mlflow
    from mlflow import MlflowClient

    from orchestrator.runtime.checkpoints import policy
    from orchestrator.training import plots
    from orchestrator.training.evaluate import evaluate

    if result.checkpoint is None:
        raise TrainingError("training reported no checkpoint (did trainer.max_epochs or limit_train_batches skip every epoch?)")
    keep = policy(config)
    best = result.get_best_checkpoint(keep.monitor, keep.mode) or result.checkpoint
    outcome.storage_path = result.path
    outcome.stop_reason = early_stop_reason(config, result.metrics or {})
    if outcome.stop_reason:
        mlflow.set_tag(TAG_STOP_REASON, outcome.stop_reason)
    with tempfile.TemporaryDirectory(prefix="orchestrator-") as tmp:
        folder = Path(tmp)
        best_file = _checkpoint_file(best, folder, "best.ckpt")
        _checkpoint_file(result.checkpoint, folder, "last.ckpt")
        mlflow.log_artifacts(str(folder), "checkpoints")
        outcome.best_checkpoint = f"{best.path}  (MLflow: checkpoints/best.ckpt)"

        evaluation = evaluate(config, best_file)
    mlflow.log_metrics(evaluation.metrics)

    client = MlflowClient(outcome.tracking_uri)
    history = {key: [(m.step, m.value) for m in client.get_metric_history(outcome.run_id, key)] for key in TRACKED_CURVES}
    mlflow.log_figure(plots.learning_curves(history), "plots/learning_curves.png")
    if evaluation.predictions is not None:
        figure = plots.confusion_matrix(evaluation.labels.numpy(), evaluation.predictions.numpy(), evaluation.num_classes)
        mlflow.log_figure(figure, "plots/confusion_matrix.png")
    if log_model:
        from orchestrator.tracking.models import log_torch_model

        log_torch_model(evaluation.model, evaluation.example_input)

    final = {k: v[-1][1] for k, v in history.items() if v}
    outcome.metrics = {**final, **{k: v for k, v in evaluation.metrics.items() if k in ("test/acc", "test/f1", "test/loss", "test/ppl")}}
    return outcome
