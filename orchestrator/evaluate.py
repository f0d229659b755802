"""Evaluate a trained checkpoint on the driver: the test split, predictions, an input example."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from orchestrator.build import build_datamodule, build_model
from orchestrator.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What the test pass of one model gave."""

    model: Any
    datamodule: Any
    metrics: dict[str, float] = field(default_factory=dict)
    predictions: torch.Tensor | None = None
    labels: torch.Tensor | None = None


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
    """Run the LitModule's own test loop (so its test metrics are the ones reported) and collect the
    test-split predictions of classifiers for the confusion matrix."""
    import lightning

    model, datamodule = load_model(config, checkpoint_path)
    trainer = lightning.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
        limit_test_batches=config["trainer"].get("limit_test_batches"),
    )
    results = trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    evaluation = Evaluation(model=model, datamodule=datamodule, metrics=metrics)
    if hasattr(model, "num_classes"):
        with torch.inference_mode():
            predictions, labels = [], []
            for x, y in datamodule.test_dataloader():
                predictions.append(model(x).argmax(dim=-1))
                labels.append(y)
        evaluation.predictions = torch.cat(predictions)
        evaluation.labels = torch.cat(labels)
    return evaluation
