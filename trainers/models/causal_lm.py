"""CausalLMLitModule: the `model=causal_lm` language model (a small GPT trained from scratch)."""

from __future__ import annotations

import torch
from lightning import LightningModule
from torch import nn
from torch.nn import functional as F
from torchmetrics import MeanMetric

from trainers.models.classifier import OptimizerFactory, SchedulerFactory
from trainers.nets.gpt import GPT


class CausalLMLitModule(LightningModule):
    """Next-token prediction with cross-entropy; `vocab_size` comes from the DataModule.

    Logs per epoch `train/loss`, `val/loss`, `val/ppl` (exp of the mean token loss) and `val/acc`
    (next-token accuracy, so checkpoint selection and early stopping by val/acc also work); after
    fit, `test/loss`, `test/ppl`, `test/acc`.

    Args:
        vocab_size: number of token ids.
        block_size: context length; must equal the DataModule's `data.block_size`.
        d_model: model width. num_heads: attention heads. num_layers: transformer blocks.
        dropout: dropout rate.
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(self, vocab_size: int, block_size: int, d_model: int = 128, num_heads: int = 4, num_layers: int = 2,
                 dropout: float = 0.1, optimizer: OptimizerFactory | None = None, scheduler: SchedulerFactory | None = None):
        super().__init__()
        for key, value in (("block_size", block_size), ("d_model", d_model), ("num_heads", num_heads), ("num_layers", num_layers)):
            if value <= 0:
                raise ValueError(f"model.{key} must be a positive integer, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout}")
        self.net = GPT(vocab_size, block_size, d_model, num_heads, num_layers, dropout)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.mean_loss = nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self.mean_acc = nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self.save_hyperparameters({"vocab_size": vocab_size, "block_size": block_size, "d_model": d_model,
                                   "num_heads": num_heads, "num_layers": num_layers, "dropout": dropout})

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.net(ids)

    def generate(self, ids: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """`ids` [B, T] followed by `max_new_tokens` sampled tokens."""
        return self.net.generate(ids, max_new_tokens, temperature, top_k, generator)

    def _loss(self, batch):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        return loss, (logits.argmax(dim=-1) == y).float().mean()

    def training_step(self, batch, batch_idx):
        loss, _ = self._loss(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def _eval_step(self, split: str, batch) -> None:
        loss, acc = self._loss(batch)
        weight = batch[1].numel()
        self.mean_loss[split].update(loss, weight)
        self.mean_acc[split].update(acc, weight)

    def _eval_epoch_end(self, split: str) -> None:
        # MeanMetric syncs across ranks in compute(); ppl is exp of the mean token loss, not a mean of ppls.
        loss = self.mean_loss[split].compute()
        self.log_dict({f"{split}/loss": loss, f"{split}/ppl": torch.exp(loss.clamp(max=50.0)),
                       f"{split}/acc": self.mean_acc[split].compute()})
        self.mean_loss[split].reset()
        self.mean_acc[split].reset()

    def validation_step(self, batch, batch_idx):
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch, batch_idx):
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            return torch.optim.AdamW(self.parameters(), lr=3e-4)
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

