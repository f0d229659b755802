"""StepTimer: the one Lightning callback every benchmark arm uses to time its training loop.

Rank zero writes one JSON file per fit into `output_dir`: the wall-clock time of the first training
step (`first_step_unix`, comparable with the launcher's clock), the summed time of the training steps
(`in_loop_s`: forward, backward, gradient all-reduce, optimizer step), the training loop's wall time
(`loop_s`: on_train_start to on_train_end, so validation and logging included), and the steps and
samples (over all ranks) it trained. Plain Lightning: no Ray, no MLflow, so it works in every arm.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


class StepTimer(Callback):
    """Times the training loop on rank zero.

    Args:
        output_dir: folder the JSON result goes to (one file per fit, named after pid and time).
    """

    def __init__(self, output_dir: str):
        self.output_dir = Path(output_dir)
        self.first_step_unix: float | None = None
        self.in_loop_s = 0.0
        self.loop_start = 0.0
        self.step_start = 0.0
        self.num_steps = 0
        self.num_samples = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self.loop_start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first_step_unix is None:
            self.first_step_unix = time.time()
        self.step_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.in_loop_s += time.perf_counter() - self.step_start
        self.num_steps += 1
        self.num_samples += len(batch[0]) * trainer.world_size

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0:
            return
        result = {
            "first_step_unix": self.first_step_unix,
            "in_loop_s": self.in_loop_s,
            "loop_s": time.perf_counter() - self.loop_start,
            "num_steps": self.num_steps,
            "num_samples": self.num_samples,
            "world_size": trainer.world_size,
            "torch_threads": torch.get_num_threads(),
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"steps-{os.getpid()}-{time.time_ns()}.json"
        path.write_text(json.dumps(result))


def read_timings(output_dir: str | Path) -> list[dict]:
    """Every StepTimer result written into `output_dir`, oldest first."""
    files = sorted(Path(output_dir).glob("steps-*.json"), key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text()) for p in files]
