"""Arm B of overhead.py: a hand-written Ray Train script with Ray's Lightning adapters, Ray's defaults.

    python benchmarks/arms/ray_train.py --timer-dir DIR --storage-dir DIR [--epochs 5 ...]

Written as Ray's Lightning guide writes it: TorchTrainer over a function that builds a lightning.Trainer
with RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback and prepare_trainer. The only
departure from a bare `ray.init()` is `address="local"` (a stale /tmp/ray record or another user's
cluster on this machine would otherwise be joined).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning
import ray
import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.lightning import (
    RayDDPStrategy,
    RayLightningEnvironment,
    RayTrainReportCallback,
    prepare_trainer,
)
from ray.train.torch import TorchTrainer

from arms.mlp_workload import add_arguments, build, trainer_arguments


def train_func(config: dict) -> None:
    from step_timer import StepTimer

    args = argparse.Namespace(**config)
    torch.set_num_threads(1)
    lightning.seed_everything(args.seed, workers=True, verbose=False)
    datamodule, model = build(args)
    trainer = lightning.Trainer(
        accelerator="cpu",
        devices="auto",
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        callbacks=[RayTrainReportCallback(), StepTimer(args.timer_dir)],
        enable_checkpointing=False,
        default_root_dir=str(Path(args.timer_dir).parent / "lightning"),
        **trainer_arguments(args),
    )
    trainer = prepare_trainer(trainer)
    trainer.fit(model, datamodule=datamodule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    parser.add_argument("--storage-dir", required=True)
    parser.add_argument("--num-workers", type=int, default=2)
    args = parser.parse_args()
    config = {k: v for k, v in vars(args).items() if k not in ("storage_dir", "num_workers")}
    ray.init(address="local")
    trainer = TorchTrainer(
        train_func,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=args.num_workers),
        run_config=RunConfig(storage_path=args.storage_dir, name="bench"),
    )
    result = trainer.fit()
    print("checkpoint:", result.checkpoint)


if __name__ == "__main__":
    main()
