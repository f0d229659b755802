"""ClassifierLitModule: cross-entropy classification with accuracy, macro-F1, precision and recall."""

from __future__ import annotations

from collections.abc import Callable

import torch
from lightning import LightningModule
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from trainers.optim.configure import configure_optimizers

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class ClassifierLitModule(LightningModule):
    """Wraps any `nn.Module` that maps a batch of inputs to class logits.

    Logs, per epoch: `train/loss`, `train/acc`, `val/loss`, `val/acc`, `val/f1`, `val/precision`,
    `val/recall`; after fit, `test/*` with the same names.

    Args:
        net: the network (inputs -> logits).
        num_classes: number of classes.
        optimizer: a partial taking the parameters (Hydra `_partial_: true`).
        scheduler: an optional partial taking the optimizer, stepped once per epoch.
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.net = net
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.loss = nn.CrossEntropyLoss()
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "f1": MulticlassF1Score(num_classes, average="macro"),
                "precision": MulticlassPrecision(num_classes, average="macro"),
                "recall": MulticlassRecall(num_classes, average="macro"),
            }
        )
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_loss(self, inputs: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss the training step minimises: cross-entropy on the labels (distillation adds the
        teacher's soft targets, trainers.models.distillation)."""
        return self.loss(logits, labels)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = self.training_loss(x, logits, y)
        self.train_acc(logits, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val/loss", self.loss(logits, y), on_epoch=True, sync_dist=True)
        self.val_metrics.update(logits, y)
        self.log_dict(self.val_metrics, on_epoch=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("test/loss", self.loss(logits, y), on_epoch=True, sync_dist=True)
        self.test_metrics.update(logits, y)
        self.log_dict(self.test_metrics, on_epoch=True)

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self(x).argmax(dim=-1)

    def optimizer_parameters(self):
        """What the optimizer partial receives: every parameter (a pre-trained model returns weight-decay
        groups, trainers.optim.configure.decay_groups)."""
        return self.parameters()

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            return torch.optim.Adam(self.parameters(), lr=1e-3)
        return configure_optimizers(self, self.optimizer_parameters(), self.optimizer_factory, self.scheduler_factory)
