"""The sequential arm of benchmarks/sweep.py: one trial = plain Lightning on one CPU device, 1 torch
thread, the same data, model, optimizer and epochs as an `orchestrate train` trial of 1 worker.
Hydra's basic launcher runs the trials of `-m` one after another in this process.

    python benchmarks/sweep_app/app.py -m timer_dir=DIR optimizer.lr=1e-3,3e-3 model.hidden_dim=64,128
"""

from __future__ import annotations

import argparse
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: step_timer, arms


@hydra.main(version_base="1.3", config_path="conf", config_name="sweep_app")
def main(cfg: DictConfig) -> float:
    import lightning
    import torch
    from arms.mlp_workload import build, trainer_arguments
    from step_timer import StepTimer

    torch.set_num_threads(1)  # as a 1-CPU Ray Train worker
    work = argparse.Namespace(seed=cfg.seed, epochs=cfg.trainer.max_epochs, lr=cfg.optimizer.lr, **cfg.data, **cfg.model)
    lightning.seed_everything(work.seed, workers=True, verbose=False)
    datamodule, model = build(work)
    # Lightning's defaults, as a user gets them: its default logger and a checkpoint per epoch.
    trainer = lightning.Trainer(
        accelerator="cpu",
        devices=1,
        callbacks=[StepTimer(cfg.timer_dir)],
        default_root_dir=HydraConfig.get().runtime.output_dir,
        **trainer_arguments(work),
    )
    trainer.fit(model, datamodule=datamodule)
    return float(trainer.callback_metrics["val/acc"])


if __name__ == "__main__":
    main()
