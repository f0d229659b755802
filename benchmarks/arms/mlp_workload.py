"""The training workload the hand-written arms share with `orchestrate train data=synthetic model=mlp`:
the same SyntheticDataModule, MLPClassifierLitModule, Adam, seed and lightning.Trainer arguments as
the product's defaults (conf/trainer/default.yaml, conf/optimizer/adam.yaml)."""

from __future__ import annotations

import argparse
import functools


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-samples", type=int, default=16384)
    parser.add_argument("--num-features", type=int, default=32)
    parser.add_argument("--num-classes", type=int, default=4)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timer-dir", required=True)


def overrides(args: argparse.Namespace) -> list[str]:
    """The same workload as `orchestrate train` overrides."""
    return [
        "data=synthetic",
        f"data.num_samples={args.num_samples}",
        f"data.num_features={args.num_features}",
        f"data.num_classes={args.num_classes}",
        f"data.batch_size={args.batch_size}",
        "model=mlp",
        f"model.hidden_dim={args.hidden_dim}",
        f"model.num_layers={args.num_layers}",
        "optimizer=adam",
        f"optimizer.lr={args.lr}",
        f"trainer.max_epochs={args.epochs}",
        f"seed={args.seed}",
    ]


def build(args: argparse.Namespace):
    """(datamodule, model) exactly as the product builds them from the overrides above."""
    import torch

    from trainers.data.synthetic import SyntheticDataModule
    from trainers.models.mlp import MLPClassifierLitModule

    datamodule = SyntheticDataModule(
        num_samples=args.num_samples,
        num_features=args.num_features,
        num_classes=args.num_classes,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    model = MLPClassifierLitModule(
        input_shape=datamodule.input_shape,
        num_classes=datamodule.num_classes,
        hidden_dim=args.hidden_dim,
        num_layers=args.num_layers,
        optimizer=functools.partial(torch.optim.Adam, lr=args.lr, weight_decay=0.0),
    )
    return datamodule, model


def trainer_arguments(args: argparse.Namespace) -> dict:
    """lightning.Trainer arguments of the product's trainer config (conf/trainer/default.yaml)."""
    return dict(max_epochs=args.epochs, num_sanity_val_steps=0, log_every_n_steps=50, enable_progress_bar=False, enable_model_summary=False)
