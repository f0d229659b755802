"""Evaluate a trained checkpoint on the driver: the test split, predictions, an input example."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from orchestrator.config.build import build_datamodule, build_model
from orchestrator.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What the test pass of one model gave.

    Attributes:
        model, datamodule: the LitModule (eval mode) and its DataModule, set up for testing.
        metrics: what the module's own `test_step` logged, plus `test/acc` and `test/f1` computed from
            the predictions of a classifier when it did not log them.
        predictions, labels: test-split classes of a classifier (outputs [N, classes] against integer
            labels [N]); None for anything else (a language model, a regressor).
        num_classes: the classifier's class count (its `num_classes`, else the width of its outputs).
        example_input: two rows of a test (or validation) batch: the MLflow model's input example.
    """

    model: Any
    datamodule: Any
    metrics: dict[str, float] = field(default_factory=dict)
    predictions: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    num_classes: int | None = None
    example_input: torch.Tensor | None = None


def batch_parts(batch) -> tuple[Any, Any]:
    """(inputs, labels) of a batch as Lightning modules receive it: a tensor alone, or a tuple/list whose
    first element is the input and second the target. Anything else (a dict) gives (None, None)."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0], batch[1] if len(batch) > 1 else None
    return None, None


def held_out_loader(datamodule):
    """The DataModule's test dataloader, else its validation one, else None (a DataModule implements
    only the loaders it has)."""
    from lightning.pytorch.utilities.model_helpers import is_overridden

    for name in ("test_dataloader", "val_dataloader"):
        if is_overridden(name, datamodule):
            return getattr(datamodule, name)()
    return None


def example_input(datamodule) -> torch.Tensor | None:
    """An input example for the model's signature: the DataModule's own `example_input()` when it has
    one, else the first two rows of its first test (or validation) batch."""
    own = getattr(datamodule, "example_input", None)
    if callable(own):
        return own()
    loader = held_out_loader(datamodule)
    inputs = batch_parts(next(iter(loader)))[0] if loader is not None else None
    return None if inputs is None else inputs[:2].clone()


def classify(model, loader) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """(predicted classes, labels, class count) over `loader`, when `model` is a classifier: outputs
    [N, classes] against integer labels [N]. None otherwise."""
    predictions, labels, width = [], [], None
    with torch.inference_mode():
        for batch in loader:
            x, y = batch_parts(batch)
            if x is None or not isinstance(y, torch.Tensor) or y.dim() != 1 or y.is_floating_point():
                return None
            logits = model(x)
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != y.shape[0]:
                return None
            width = logits.shape[1]
            predictions.append(logits.argmax(dim=-1))
            labels.append(y)
    if not predictions:
        return None
    return torch.cat(predictions), torch.cat(labels), width


def load_state_dict(checkpoint_path: str | Path) -> dict[str, torch.Tensor]:
    """The model weights of a Lightning checkpoint, loaded with weights_only=True (no unpickling of code)."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise ConfigError("source.checkpoint", f"no checkpoint file at {path}", "give the path of a .ckpt file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors: not a (complete) checkpoint
        raise ConfigError("source.checkpoint", f"{path} is not a readable checkpoint ({err.__class__.__name__}: {err})") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError("source.checkpoint", f"{path} is not a Lightning checkpoint (no state_dict)")
    return checkpoint["state_dict"]


def load_model(config: dict[str, Any], checkpoint_path: str | Path):
    """The LitModule of `config`, with the weights of `checkpoint_path`, in eval mode."""
    datamodule = build_datamodule(config)
    datamodule.setup("test")
    model = build_model(config, datamodule)
    model.load_state_dict(load_state_dict(checkpoint_path))
    return model.eval(), datamodule


def evaluate(config: dict[str, Any], checkpoint_path: str | Path) -> Evaluation:
    """Run the LitModule's own test loop (so its test metrics are the ones reported), then, for a
    classifier, collect the test-split predictions (confusion matrix; `test/acc`, `test/f1` when the
    module does not log them). A module without `test_step` or a DataModule without a test split is
    evaluated as far as it allows, never failed for it."""
    import lightning
    from lightning.pytorch.utilities.model_helpers import is_overridden
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_f1_score,
    )

    model, datamodule = load_model(config, checkpoint_path)
    evaluation = Evaluation(model=model, datamodule=datamodule, example_input=example_input(datamodule))
    if not is_overridden("test_dataloader", datamodule):
        log.warning("%s has no test_dataloader: no test metrics", type(datamodule).__name__)
        return evaluation
    if is_overridden("test_step", model):
        trainer = lightning.Trainer(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_test_batches=config["trainer"].get("limit_test_batches"),
        )
        results = trainer.test(model, datamodule=datamodule, verbose=False)
        evaluation.metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    else:
        log.warning("%s has no test_step: test metrics come from its predictions only", type(model).__name__)
    classified = classify(model, datamodule.test_dataloader())
    if classified is not None:
        evaluation.predictions, evaluation.labels, width = classified
        evaluation.num_classes = getattr(model, "num_classes", None) or width
        computed = {
            "test/acc": multiclass_accuracy(evaluation.predictions, evaluation.labels, evaluation.num_classes, average="micro"),
            "test/f1": multiclass_f1_score(evaluation.predictions, evaluation.labels, evaluation.num_classes, average="macro"),
        }
        for key, value in computed.items():
            evaluation.metrics.setdefault(key, float(value))
    return evaluation
