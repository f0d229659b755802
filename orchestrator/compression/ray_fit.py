"""Train a stage's model on Ray through the training path (`launch.fit_on_ray`, the same workers as
`orchestrate train`), into the variant's own MLflow run, and bring the best weights back."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from orchestrator.errors import TrainingError

WARM_START = "trainers.callbacks.warm_start.WarmStart"


def fit_best_state(config: dict[str, Any], run_id: str, tracking_uri: str) -> dict[str, torch.Tensor]:
    """Fit `config` on Ray (metrics go into run `run_id`); the state_dict of the best checkpoint."""
    from orchestrator.runtime.checkpoints import policy
    from orchestrator.runtime.launch import fit_on_ray
    from orchestrator.runtime.worker import CHECKPOINT_NAME
    from orchestrator.training.evaluate import load_state_dict

    result = fit_on_ray(config, run_id, tracking_uri)
    if result.checkpoint is None:
        raise TrainingError(f"the fit of run {run_id} reported no checkpoint")
    keep = policy(config)
    best = result.get_best_checkpoint(keep.monitor, keep.mode) or result.checkpoint
    with best.as_directory() as folder:
        return load_state_dict(Path(folder) / CHECKPOINT_NAME)


def fine_tune_config(config: dict[str, Any], weights_path: Path, epochs: int, lr: float | None, keep_sparsity: bool) -> dict[str, Any]:
    """The training config of a fine-tune: same data, model and optimizer, warm-started from
    `weights_path` (layers resized to the pruned shapes), `epochs` epochs."""
    tuned = copy.deepcopy(config)
    tuned["trainer"]["max_epochs"] = epochs
    if tuned["trainer"].get("min_epochs"):
        tuned["trainer"]["min_epochs"] = min(tuned["trainer"]["min_epochs"], epochs)
    if lr is not None:
        tuned["optimizer"]["lr"] = lr
    callbacks = dict(tuned.get("callbacks") or {})
    callbacks["warm_start"] = {"_target_": WARM_START, "weights_path": str(weights_path), "keep_sparsity": keep_sparsity}
    tuned["callbacks"] = callbacks
    return tuned


def fine_tune(
    config: dict[str, Any], model, work_dir: Path, run_id: str, tracking_uri: str, epochs: int, lr: float | None, keep_sparsity: bool
):
    """Fine-tune `model` (a LitModule, possibly pruned) on Ray; returns it holding the best weights."""
    weights_path = work_dir / f"{run_id}-start.ckpt"
    torch.save({"state_dict": model.state_dict()}, weights_path)
    model.load_state_dict(fit_best_state(fine_tune_config(config, weights_path, epochs, lr, keep_sparsity), run_id, tracking_uri))
    return model.eval()
