"""Arm A of overhead.py: plain Lightning DDP, 2 processes on CPU, one torch thread each.

python benchmarks/arms/lightning_ddp.py --timer-dir DIR [--epochs 5 ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning
import torch
from step_timer import StepTimer

from arms.mlp_workload import add_arguments, build, trainer_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the same as each Ray worker (Ray sets OMP_NUM_THREADS=1 there)
    lightning.seed_everything(args.seed, workers=True, verbose=False)
    datamodule, model = build(args)
    trainer = lightning.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        callbacks=[StepTimer(args.timer_dir)],
        default_root_dir=str(Path(args.timer_dir).parent / "lightning"),
        **trainer_arguments(args),
    )
    trainer.fit(model, datamodule=datamodule)


if __name__ == "__main__":
    main()
