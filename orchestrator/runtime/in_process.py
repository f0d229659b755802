"""A 1-worker sweep trial trained inside its own Ray task, with Ray Train's local mode.

A worker group of one is DDP with nobody to talk to, and starting it (controller, worker, and their
helper actors, each a new Python process that imports torch and Lightning) costs a short trial more
than its training. The grid launcher therefore runs a trial of 1 CPU worker in its Ray task, which
holds the trial's CPUs and stays warm across trials: `TorchTrainer` with `ScalingConfig(num_workers=0)`
runs the same `worker.train_loop_per_worker` in that process.

Ray Train's local mode (2.60) persists no checkpoint, so `CheckpointKeeper` writes them where a worker
group would (`<storage>/<run id>/checkpoint_<epoch>/checkpoint.ckpt`), keeps the best
`callbacks.model_checkpoint.num_to_keep` by its monitor plus the latest, as Ray's CheckpointConfig does,
and `result()` gives `train.py` the same Result a worker group returns.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from lightning import Callback

from orchestrator.runtime.checkpoints import CHECKPOINT_NAME
from orchestrator.runtime.trials import IN_PROCESS_ENV, fits_in_process

METRICS_NAME = "metrics.json"


def wanted(config: dict[str, Any]) -> bool:
    """This run is a grid launcher's trial that it asked to train in its own process, and it fits one."""
    return os.environ.get(IN_PROCESS_ENV) == "1" and fits_in_process(config["scaling"], config["paths"]["storage_dir"])


class CheckpointKeeper(Callback):
    """Every epoch: a checkpoint with its metrics in the run's folder; older ones that are neither among
    the best `num_to_keep` by `monitor` nor the latest are deleted."""

    def __init__(self, run_dir: str, monitor: str, mode: str, num_to_keep: int):
        self.run_dir = Path(run_dir)
        self.monitor, self.mode, self.num_to_keep = monitor, mode, num_to_keep

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        folder = self.run_dir / f"checkpoint_{trainer.current_epoch:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        metrics.update(epoch=trainer.current_epoch, step=trainer.global_step)
        trainer.save_checkpoint(folder / CHECKPOINT_NAME, weights_only=False)
        (folder / METRICS_NAME).write_text(json.dumps(metrics))
        checkpoints = saved(self.run_dir)
        kept = {folder} | {f for f, _ in best(checkpoints, self.monitor, self.mode)[: self.num_to_keep]}
        for old, _ in checkpoints:
            if old not in kept:
                shutil.rmtree(old, ignore_errors=True)


def saved(run_dir: Path) -> list[tuple[Path, dict[str, float]]]:
    """The run's checkpoint folders with their metrics, oldest first."""
    found = []
    for folder in sorted(run_dir.glob("checkpoint_*")):
        if (folder / CHECKPOINT_NAME).is_file() and (folder / METRICS_NAME).is_file():
            found.append((folder, json.loads((folder / METRICS_NAME).read_text())))
    return found


def best(checkpoints: list[tuple[Path, dict[str, float]]], monitor: str, mode: str) -> list[tuple[Path, dict[str, float]]]:
    """The checkpoints that report a finite `monitor`, best first."""
    scored = [c for c in checkpoints if math.isfinite(c[1].get(monitor, math.nan))]
    return sorted(scored, key=lambda c: c[1][monitor], reverse=mode == "max")


def result(run_dir: Path):
    """Ray's Result of the run, from the checkpoints CheckpointKeeper left (as a worker group's fit returns)."""
    from ray.train import Checkpoint, Result

    checkpoints = saved(run_dir)
    last = checkpoints[-1] if checkpoints else (None, None)
    return Result(
        metrics=last[1], checkpoint=Checkpoint.from_directory(str(last[0])) if last[0] else None, error=None,
        path=str(run_dir), best_checkpoints=[(Checkpoint.from_directory(str(f)), m) for f, m in checkpoints],
    )
