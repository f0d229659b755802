"""The LitModules train in a plain lightning.Trainer (no Ray, no orchestrator)."""

from __future__ import annotations

import functools

import lightning
import pytest
import torch

from trainers.data.digits import DigitsDataModule
from trainers.models.cnn import CNNClassifierLitModule
from trainers.models.mlp import MLPClassifierLitModule


@pytest.mark.parametrize("model_class", [MLPClassifierLitModule, CNNClassifierLitModule])
def test_plain_lightning_fit_learns_digits(model_class, tmp_path):
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=64)
    model = model_class(
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        hidden_dim=32,
        optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
        scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2),
    )
    trainer = lightning.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    assert {"val/acc", "val/f1", "train/loss"} <= set(trainer.callback_metrics)
    metrics = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert set(metrics) >= {"test/acc", "test/f1", "test/precision", "test/recall", "test/loss"}
    assert metrics["test/acc"] > 0.5


def test_hyperparameters_are_plain_so_checkpoints_load_weights_only(tmp_path):
    dm = DigitsDataModule()
    model = MLPClassifierLitModule(input_shape=dm.input_shape, num_classes=10, optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    trainer = lightning.Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["hyper_parameters"]["hidden_dim"] == 128


def test_cnn_refuses_flat_inputs():
    with pytest.raises(ValueError, match="model=mlp"):
        CNNClassifierLitModule(input_shape=(32,), num_classes=4)
