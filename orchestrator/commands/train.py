"""`orchestrate train [OVERRIDES]`: one training run on Ray, tracked in one MLflow run.

    orchestrate train data=digits model=mlp trainer.max_epochs=10 scaling.num_workers=2
    orchestrate train model=cnn optimizer=sgd optimizer.lr=0.05 scheduler=cosine
    orchestrate train data=csv data.path=my.csv data.label_column=label
    orchestrate train model._target_=mypkg.MyLitModule data._target_=mypkg.MyDataModule
    orchestrate train --cfg job            # print the composed config and exit
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from orchestrator.conf_dir import CONF_DIR
from orchestrator.errors import OrchestratorError, RunInterrupted, TrainingError
from orchestrator.schema import register_schemas

log = logging.getLogger(__name__)

register_schemas()

TRACKED_CURVES = ("train/loss", "val/loss", "train/acc", "val/acc")
# Set when early stopping ended the run before trainer.max_epochs, saying when and why.
TAG_STOP_REASON = "orchestrator.stop_reason"


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


def resolved_config(cfg: DictConfig, overrides: list[str] | None = None) -> dict[str, Any]:
    """The plain, resolved config that travels to the workers (never a DictConfig). `overrides`: what
    the user wrote (default: the running Hydra app's), so that a class named by `data._target_=` or
    `model._target_=` does not receive the default group's keys it does not take."""
    from orchestrator.build import command_line_overrides, drop_unwritten_keys, written_keys

    config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    config.pop("hydra", None)
    written = written_keys(command_line_overrides() if overrides is None else overrides)
    return absolute_local_paths(drop_unwritten_keys(config, written))


# Local files named relative to the driver's working directory (`data.path=reviews.csv`). Ray workers run
# in another directory, so these travel as absolute paths. `data.tokenizer` only when it is a folder here
# (otherwise it is a level such as `word`).
LOCAL_PATH_KEYS = {"data": ("path", "cache_dir", "tokenizer"), "model": ("path",)}


def absolute_local_paths(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with the relative local paths of LOCAL_PATH_KEYS made absolute (URIs left alone)."""
    for group, keys in LOCAL_PATH_KEYS.items():
        node = config.get(group)
        for key in keys if isinstance(node, dict) else ():
            value = node.get(key)
            if not isinstance(value, str) or not value or "://" in value or Path(value).expanduser().is_absolute():
                continue
            if key == "tokenizer" and not Path(value).exists():
                continue
            node[key] = str(Path(value).expanduser().resolve())
    return config


def prepare(cfg: DictConfig, buildable: bool = True):
    """Everything checked before Ray starts: schema, tracking store, resources and (`buildable`) the
    objects the config names. Returns (typed config, plain config, tracking URI)."""
    from orchestrator.build import check_buildable
    from orchestrator.schema import validate
    from orchestrator.tracking import check_reachable, resolve_uri

    typed = validate(cfg)
    config = resolved_config(cfg)
    uri = resolve_uri(typed.tracking.uri)
    check_reachable(uri, typed.tracking.timeout_s)
    check_embedded_fits(typed)
    if buildable:
        check_buildable(config)  # last: it imports the trainers and Lightning
    return typed, config, uri


def run_train(cfg: DictConfig, parent_run_id: str | None = None, extra_tags: dict[str, str] | None = None) -> TrainOutcome:
    """Validate, connect to Ray, create the MLflow run, train on Ray, then evaluate and log the model."""
    return train_prepared(*prepare(cfg), parent_run_id=parent_run_id, extra_tags=extra_tags)


def train_prepared(typed, config: dict[str, Any], uri: str, parent_run_id: str | None = None,
                   extra_tags: dict[str, str] | None = None) -> TrainOutcome:
    """run_train for a config that prepare() (or a caller's equivalent checks) already passed."""
    import mlflow
    from mlflow import MlflowClient

    from orchestrator.logs import quiet_libraries
    from orchestrator.tracking import experiment_id, flatten, mask_secrets, run_tags

    quiet_libraries()  # after the checks: it imports Lightning (seconds), which a bad value need not wait for
    connect_for(typed, config)
    mlflow.set_tracking_uri(uri)
    exp_id = experiment_id(MlflowClient(uri), typed.tracking.experiment)
    public = mask_secrets(config)
    with mlflow.start_run(
        experiment_id=exp_id,
        run_name=typed.tracking.run_name,
        tags=run_tags("train", config, extra_tags),
        parent_run_id=parent_run_id,
    ) as run:
        mlflow.log_params(flatten(public))
        mlflow.log_text(OmegaConf.to_yaml(public), "config.yaml")
        return train_in_run(config, run.info.run_id, exp_id, uri, typed.tracking.log_model)


def connect_for(typed, config: dict[str, Any]) -> None:
    """Start or join Ray for this run, and refuse a request the cluster can never satisfy."""
    from orchestrator.cluster import check_fits, connect
    from orchestrator.launch import user_code_runtime_env

    log.info("training on %s", connect(typed.cluster, user_code_runtime_env(config)))
    if not typed.scaling.wait_for_resources:
        check_fits(*_request(typed.scaling))


def _request(scaling) -> tuple[int, int, bool]:
    return scaling.min_workers or scaling.num_workers, scaling.cpus_per_worker, scaling.use_gpu


def check_embedded_fits(typed) -> None:
    """An embedded Ray's CPUs are known before it starts: refuse too many workers in seconds, not after
    Ray is up (a cluster to join, GPUs and scaling.wait_for_resources are checked once connected)."""
    from orchestrator.cluster import check_fits, embedded_cpus

    cpus = embedded_cpus(typed.cluster)
    if cpus is not None and not typed.scaling.use_gpu and not typed.scaling.wait_for_resources:
        check_fits(*_request(typed.scaling), resources={"CPU": cpus})


def train_in_run(config: dict[str, Any], run_id: str, exp_id: str, uri: str, log_model: bool) -> TrainOutcome:
    """Inside the active MLflow run `run_id`: fit on Ray (resuming from the run's storage if it has
    checkpoints), then log the outcome. An interrupted run ends KILLED, a failed one FAILED with the
    error as tag `orchestrator.error`, and a Tune trial its scheduler stopped FINISHED, early-stopped."""
    import mlflow

    from orchestrator.errors import RunInterrupted
    from orchestrator.launch import fit_on_ray, in_tune_trial

    tune_trial = in_tune_trial()
    try:
        result = fit_on_ray(config, run_id, uri)
        return _log_outcome(config, result, TrainOutcome(run_id, exp_id, uri), log_model)
    except (RunInterrupted, KeyboardInterrupt) as err:
        mlflow.set_tag("orchestrator.error", f"interrupted: {err}"[:5000])
        mlflow.end_run("KILLED")
        if isinstance(err, RunInterrupted):
            raise
        raise RunInterrupted(f"run {run_id} interrupted; continue it with: orchestrate resume {run_id}") from err
    except Exception as err:
        if tune_trial and not in_tune_trial():
            # Tune's scheduler stopped this trial while it trained: record what the sweeper records for
            # it (sweep.settle_trial) here too, as this thread may write after the sweeper has.
            from orchestrator.sweep import TAG_EARLY_STOPPED, set_tag_once

            try:
                set_tag_once(mlflow.MlflowClient(uri), run_id, TAG_EARLY_STOPPED, "true")
            finally:
                mlflow.end_run("FINISHED")
            return TrainOutcome(run_id, exp_id, uri)
        from ray.train import TrainingFailedError

        summary = summarize_failure(err, config["scaling"]) if isinstance(err, TrainingFailedError) else f"{err.__class__.__name__}: {err}"
        mlflow.set_tag("orchestrator.error", summary[:5000])
        if isinstance(err, TrainingFailedError):
            raise TrainingError(f"training failed in run {run_id} (it is FAILED; its checkpoints are kept): {summary}") from err
        raise


def summarize_failure(err: Exception, scaling: dict[str, Any]) -> str:
    """One line per distinct worker error ("ranks 0,1: NonFiniteLossError: ..."), not Ray's tracebacks;
    for a worker group that could not start, what the cluster lacks and the keys that fix it."""
    cause = getattr(err, "controller_failure", None)
    if cause is not None and type(cause).__name__ in ("WorkerGroupStartupTimeoutError", "WorkerGroupStartupFailedError"):
        workers = (f"scaling.min_workers={scaling['min_workers']}" if scaling.get("min_workers")
                   else f"scaling.num_workers={scaling['num_workers']}")
        fix = "a lower scaling.min_workers" if scaling.get("min_workers") else "scaling.min_workers"
        return (f"{type(cause).__name__}: the cluster no longer has room for {workers} x scaling.cpus_per_worker="
                f"{scaling['cpus_per_worker']} (was a node lost?); set {fix} to go on with fewer workers, or "
                "scaling.wait_for_resources=true to wait for the cluster to grow")
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
    from orchestrator.checkpoints import CHECKPOINT_NAME

    with checkpoint.as_directory() as source:
        target = folder / name
        shutil.copyfile(Path(source) / CHECKPOINT_NAME, target)
    return target


def early_stop_reason(config: dict[str, Any], last_metrics: dict[str, Any]) -> str | None:
    """"stopped at epoch 7 of 12: val/acc did not improve for 5 epochs" when the run's early stopping
    ended it before trainer.max_epochs (its last report's `epoch` says how far it got); else None."""
    stopping = (config.get("callbacks") or {}).get("early_stopping")
    max_epochs = config["trainer"]["max_epochs"]
    epochs = int(last_metrics.get("epoch", max_epochs - 1)) + 1
    if not isinstance(stopping, dict) or epochs >= max_epochs or config["trainer"].get("max_steps", -1) > 0:
        return None
    return (f"stopped at epoch {epochs} of {max_epochs}: {stopping.get('monitor', 'val_loss')} did not improve "
            f"for {stopping.get('patience', 3)} epochs")


def _log_outcome(config: dict, result, outcome: TrainOutcome, log_model: bool) -> TrainOutcome:
    """On the driver, after fit: checkpoints, test metrics of the best checkpoint, plots and the model."""
    import mlflow
    from mlflow import MlflowClient

    from orchestrator import plots
    from orchestrator.checkpoints import policy
    from orchestrator.evaluate import evaluate

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
    history = {
        key: [(m.step, m.value) for m in client.get_metric_history(outcome.run_id, key)] for key in TRACKED_CURVES
    }
    mlflow.log_figure(plots.learning_curves(history), "plots/learning_curves.png")
    if evaluation.predictions is not None:
        figure = plots.confusion_matrix(evaluation.labels.numpy(), evaluation.predictions.numpy(), evaluation.num_classes)
        mlflow.log_figure(figure, "plots/confusion_matrix.png")
    if log_model:
        log_torch_model(evaluation.model, evaluation.example_input)

    final = {k: v[-1][1] for k, v in history.items() if v}
    outcome.metrics = {**final, **{k: v for k, v in evaluation.metrics.items() if k in ("test/acc", "test/f1", "test/loss", "test/ppl")}}
    return outcome


def log_torch_model(model, example_input, name: str = "model"):
    """`mlflow.pytorch.log_model` with a signature and an input example (none when `example_input` is
    None, or the model's output is not one tensor), pinned requirements (no slow requirement inference).
    Returns MLflow's ModelInfo (an MLflow 3 LoggedModel linked to the run)."""
    import importlib.metadata

    import mlflow
    import torch
    from mlflow.models import infer_signature

    signature = None
    if example_input is not None:
        with torch.inference_mode():
            output = model(example_input)
        if isinstance(output, torch.Tensor):
            signature = infer_signature(example_input.numpy(), output.numpy())
    if signature is None:
        log.warning("the model is logged without a signature: its inputs or outputs are not single tensors")
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}", "lightning", "torchmetrics"]
    # Hugging Face models (model=pretrained_encoder) unpickle only beside the libraries that define them.
    libraries = {type(m).__module__.split(".")[0] for m in model.modules()} & {"transformers", "peft"}
    requirements += [f"{name}=={importlib.metadata.version(name)}" for name in sorted(libraries)]
    return mlflow.pytorch.log_model(
        model, name=name, signature=signature, pip_requirements=requirements,
        input_example=None if signature is None else example_input.numpy(),
    )


def report_and_exit(err: OrchestratorError) -> None:
    from orchestrator.console import print_error

    print_error(str(err))
    sys.exit(130 if isinstance(err, RunInterrupted) else 1 if isinstance(err, TrainingError) else 2)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from orchestrator.console import print_run_summary
    from orchestrator.sweep import PARENT_RUN_ENV

    # In a sweep (-m) the launcher runs this per trial, sets the sweep run as parent, and reports
    # failed trials itself: an error must fail this trial only, never exit the sweep.
    trial = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        outcome = run_train(cfg, parent_run_id=os.environ.get(PARENT_RUN_ENV) if trial else None)
    except OrchestratorError as err:
        if trial:
            raise
        report_and_exit(err)
        return
    if trial:
        return outcome
    print_run_summary(
        "training run finished", outcome.run_id, outcome.experiment_id, outcome.tracking_uri, outcome.metrics,
        {**({"early stopping": outcome.stop_reason} if outcome.stop_reason else {}),
         "best checkpoint": outcome.best_checkpoint or "-", "Ray storage": outcome.storage_path or "-"},
    )
