"""`orchestrate train [OVERRIDES]`: one training run on Ray, tracked in one MLflow run.

    orchestrate train data=digits model=mlp trainer.max_epochs=10 scaling.num_workers=2
    orchestrate train model=cnn optimizer=sgd optimizer.lr=0.05 scheduler=cosine
    orchestrate train data=csv data.path=my.csv data.label_column=label
    orchestrate train model._target_=mypkg.MyLitModule data._target_=mypkg.MyDataModule
    orchestrate train --cfg job            # print the composed config and exit
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from orchestrator.conf_dir import CONF_DIR
from orchestrator.errors import OrchestratorError, TrainingError
from orchestrator.schema import register_schemas

log = logging.getLogger(__name__)

register_schemas()

TRACKED_CURVES = ("train/loss", "val/loss", "train/acc", "val/acc")


@dataclass
class TrainOutcome:
    """What one training run left behind."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    storage_path: str | None = None


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The plain, resolved config that travels to the workers (never a DictConfig)."""
    config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    config.pop("hydra", None)
    return config


def prepare(cfg: DictConfig):
    """Everything checked before Ray starts: schema, buildable objects, tracking store.
    Returns (typed config, plain config, tracking URI)."""
    from orchestrator.build import check_buildable
    from orchestrator.schema import validate
    from orchestrator.tracking import check_reachable, resolve_uri

    typed = validate(cfg)
    config = resolved_config(cfg)
    check_buildable(config)
    uri = resolve_uri(typed.tracking.uri)
    check_reachable(uri, typed.tracking.timeout_s)
    return typed, config, uri


def run_train(cfg: DictConfig, parent_run_id: str | None = None, extra_tags: dict[str, str] | None = None) -> TrainOutcome:
    """Validate, connect to Ray, create the MLflow run, train on Ray, then evaluate and log the model."""
    import mlflow
    from mlflow import MlflowClient

    from orchestrator.cluster import check_fits, connect
    from orchestrator.launch import fit_on_ray, user_code_runtime_env
    from orchestrator.logs import quiet_libraries
    from orchestrator.tracking import experiment_id, flatten, mask_secrets, run_tags

    quiet_libraries()
    typed, config, uri = prepare(cfg)
    where = connect(typed.cluster, user_code_runtime_env(config))
    log.info("training on %s", where)
    check_fits(typed.scaling.num_workers, typed.scaling.cpus_per_worker, typed.scaling.use_gpu)

    mlflow.set_tracking_uri(uri)
    exp_id = experiment_id(MlflowClient(uri), typed.tracking.experiment)
    public = mask_secrets(config)
    with mlflow.start_run(
        experiment_id=exp_id,
        run_name=typed.tracking.run_name,
        tags=run_tags("train", config, extra_tags),
        parent_run_id=parent_run_id,
    ) as run:
        run_id = run.info.run_id
        try:
            mlflow.log_params(flatten(public))
            mlflow.log_text(OmegaConf.to_yaml(public), "config.yaml")
            result = fit_on_ray(config, run_id, uri)
            outcome = _log_outcome(config, result, TrainOutcome(run_id, exp_id, uri), typed.tracking.log_model)
        except Exception as err:
            mlflow.set_tag("orchestrator.error", f"{err.__class__.__name__}: {err}"[:5000])
            if err.__class__.__name__ == "TrainingFailedError":
                raise TrainingError(f"training failed in run {run_id}: {err}") from err
            raise
    return outcome


def _checkpoint_file(checkpoint, folder: Path, name: str) -> Path:
    from orchestrator.worker import CHECKPOINT_NAME

    with checkpoint.as_directory() as source:
        target = folder / name
        shutil.copyfile(Path(source) / CHECKPOINT_NAME, target)
    return target


def _log_outcome(config: dict, result, outcome: TrainOutcome, log_model: bool) -> TrainOutcome:
    """On the driver, after fit: checkpoints, test metrics of the best checkpoint, plots and the model."""
    import mlflow
    from mlflow import MlflowClient

    from orchestrator import plots
    from orchestrator.evaluate import evaluate

    if result.checkpoint is None:
        raise TrainingError("training reported no checkpoint (did trainer.max_epochs or limit_train_batches skip every epoch?)")
    checkpointing = (config.get("callbacks") or {}).get("model_checkpoint") or {}
    monitor = checkpointing.get("monitor", "val/acc")
    best = result.get_best_checkpoint(monitor, checkpointing.get("mode", "max")) or result.checkpoint
    outcome.storage_path = result.path
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
        figure = plots.confusion_matrix(
            evaluation.labels.numpy(), evaluation.predictions.numpy(), evaluation.model.num_classes
        )
        mlflow.log_figure(figure, "plots/confusion_matrix.png")
    if log_model:
        log_torch_model(evaluation.model, evaluation.datamodule.example_input())

    final = {k: v[-1][1] for k, v in history.items() if v}
    outcome.metrics = {**final, **{k: v for k, v in evaluation.metrics.items() if k in ("test/acc", "test/f1", "test/loss")}}
    return outcome


def log_torch_model(model, example_input, name: str = "model"):
    """`mlflow.pytorch.log_model` with a signature and an input example, pinned requirements (no slow
    requirement inference). Returns MLflow's ModelInfo (an MLflow 3 LoggedModel linked to the run)."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    with torch.inference_mode():
        output = model(example_input)
    signature = infer_signature(example_input.numpy(), output.numpy())
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}", "lightning", "torchmetrics"]
    return mlflow.pytorch.log_model(
        model, name=name, signature=signature, input_example=example_input.numpy(), pip_requirements=requirements
    )


def report_and_exit(err: OrchestratorError) -> None:
    from orchestrator.console import print_error

    print_error(str(err))
    sys.exit(2 if not isinstance(err, TrainingError) else 1)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    from orchestrator.console import print_run_summary

    try:
        outcome = run_train(cfg)
    except OrchestratorError as err:
        report_and_exit(err)
        return
    print_run_summary(
        "training run finished", outcome.run_id, outcome.experiment_id, outcome.tracking_uri, outcome.metrics,
        {"best checkpoint": outcome.best_checkpoint or "-", "Ray storage": outcome.storage_path or "-"},
    )
