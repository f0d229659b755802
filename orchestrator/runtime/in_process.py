"""A 1-worker sweep trial trained inside its own Ray task, with Ray Train's local mode.

A worker group of one is DDP with nobody to talk to, and starting it (controller, worker, and their
helper actors, each a new Python process that imports torch and Lightning) costs a short trial more
than its training. The grid launcher therefore runs a trial of 1 CPU worker in its Ray task, which
holds the trial's CPUs and stays warm across trials: `TorchTrainer` with `ScalingConfig(num_workers=0)`
runs the same `worker.train_loop_per_worker` in that process.

Ray Train's local mode (2.60) persists no checkpoint, so `CheckpointKeeper`, a Lightning
`ModelCheckpoint`, writes them where a worker group would (`<storage>/<run id>/checkpoint_<epoch>/checkpoint.ckpt`,
with the epoch's metrics beside it), keeps the best `callbacks.model_checkpoint.num_to_keep` by its monitor
plus the latest, as Ray's CheckpointConfig does, and `result()` gives `train.py` the same Result a worker
group returns.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

from orchestrator.runtime.checkpoints import CHECKPOINT_NAME
from orchestrator.runtime.trials import IN_PROCESS_ENV, fits_in_process

METRICS_NAME = "metrics.json"
FOLDER_PATTERN = "checkpoint_{epoch:06d}/" + CHECKPOINT_NAME.removesuffix(ModelCheckpoint.FILE_EXTENSION)


def wanted(config: dict[str, Any]) -> bool:
    """This run is a grid launcher's trial that it asked to train in its own process, and it fits one."""
    return os.environ.get(IN_PROCESS_ENV) == "1" and fits_in_process(config["scaling"], config["paths"]["storage_dir"])


class CheckpointKeeper(ModelCheckpoint):
    """Lightning's top-k and last checkpoints, in Ray's layout: one folder per epoch holding the checkpoint
    and the epoch's metrics; a folder goes when it is neither among the best `num_to_keep` nor the latest."""

    CHECKPOINT_NAME_LAST = FOLDER_PATTERN  # the latest is an epoch's folder like the others, not a copy

    def __init__(self, run_dir: str, monitor: str, mode: str, num_to_keep: int):
        super().__init__(
            dirpath=run_dir,
            filename=FOLDER_PATTERN,
            monitor=monitor,
            mode=mode,
            save_top_k=num_to_keep,
            save_last=True,
            auto_insert_metric_name=False,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._last_global_step_saved != trainer.global_step:  # not among the best, yet Ray keeps the latest
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_topk_checkpoint(self, trainer, monitor_candidates) -> None:
        if self.monitor not in monitor_candidates:
            return  # a module that does not log the monitor: kept as the latest only (Lightning would raise)
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        if filepath == self._last_checkpoint_saved and trainer.global_step == self._last_global_step_saved:
            return  # the epoch's top-k save already wrote the folder that is also the latest
        super()._save_checkpoint(trainer, filepath)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        metrics.update(epoch=trainer.current_epoch, step=trainer.global_step)
        (Path(filepath).parent / METRICS_NAME).write_text(json.dumps(metrics))

    def _remove_checkpoint(self, trainer, filepath: str) -> None:
        if filepath != self.last_model_path and filepath not in self.best_k_models:
            shutil.rmtree(Path(filepath).parent, ignore_errors=True)


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
        metrics=last[1],
        checkpoint=Checkpoint.from_directory(str(last[0])) if last[0] else None,
        error=None,
        path=str(run_dir),
        best_checkpoints=[(Checkpoint.from_directory(str(f)), m) for f, m in checkpoints],
    )
