"""A user's own LightningModule and LightningDataModule, written for a plain `lightning.Trainer`: they know
nothing of the orchestrator (no `net`, no `example_input`, no `num_classes`; constructors that take only
their own arguments). The tests write them into a working directory, as a user's package would be."""

from __future__ import annotations

import sys
from pathlib import Path

MODULE = "blobs_lightning"
DATA_TARGET = f"{MODULE}.BlobsData"
MODEL_TARGET = f"{MODULE}.BlobsClassifier"

SOURCE = '''
import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class BlobsData(L.LightningDataModule):
    """Three Gaussian blobs in 8 dimensions: 400 train, 100 val, 100 test rows."""

    def __init__(self, batch_size: int = 32):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage=None):
        g = torch.Generator().manual_seed(0)
        centers = torch.randn(3, 8, generator=g) * 3
        y = torch.arange(600) % 3
        x = centers[y] + torch.randn(600, 8, generator=g)
        self.train_set = TensorDataset(x[:400], y[:400])
        self.val_set = TensorDataset(x[400:500], y[400:500])
        self.test_set = TensorDataset(x[500:], y[500:])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=self.batch_size)


class BlobsClassifier(L.LightningModule):
    """Two linear layers held as `layers`; logs loss and accuracy, and in test a metric of its own."""

    def __init__(self, width: int = 16, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.layers = nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 3))

    def forward(self, x):
        return self.layers(x)

    def _step(self, batch, stage):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log(f"{stage}/loss", loss, on_epoch=True, on_step=False, sync_dist=True)
        self.log(f"{stage}/acc", (logits.argmax(-1) == y).float().mean(), on_epoch=True, on_step=False, sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")
        self.log("test/max_logit", self(batch[0]).max(), on_epoch=True, reduce_fx="max")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
'''


def write_module(folder: Path) -> Path:
    """The module file in `folder` (a user's working directory)."""
    path = folder / f"{MODULE}.py"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def import_module(folder: Path, monkeypatch):
    """Write the module into `folder` and make it importable in this process (as the CLI's working directory)."""
    write_module(folder)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop(MODULE, None)
    __import__(MODULE)
    return sys.modules[MODULE]
