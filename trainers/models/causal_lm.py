"""Next-token language models: NextTokenLitModule (any network from token ids to next-token logits) and
CausalLMLitModule, the `model=causal_lm` small GPT trained from scratch."""

from __future__ import annotations

import torch
from lightning import LightningModule
from torch import nn
from torch.nn import functional as F
from torchmetrics import MeanMetric

from trainers.errors import SettingError
from trainers.models.classifier import OptimizerFactory, SchedulerFactory
from trainers.nets.gpt import GPT
from trainers.optim.configure import configure_optimizers


class NextTokenLitModule(LightningModule):
    """Next-token prediction with cross-entropy, for any `net` that maps ids [B, T] to logits [B, T, vocab].

    Logs per epoch `train/loss`, `val/loss`, `val/ppl` (exp of the mean token loss) and `val/acc`
    (next-token accuracy, so checkpoint selection and early stopping by val/acc also work); after
    fit, `test/loss`, `test/ppl`, `test/acc`.

    Args:
        net: the network (ids -> next-token logits at every position).
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(self, net: nn.Module, optimizer: OptimizerFactory | None = None, scheduler: SchedulerFactory | None = None):
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.mean_loss = nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self.mean_acc = nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.net(ids)

    def training_loss(self, ids: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss the training step minimises: mean next-token cross-entropy (distillation adds the
        teacher's soft targets, trainers.models.distillation)."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.training_loss(x, self(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def _eval_step(self, split: str, batch) -> None:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        weight = y.numel()
        self.mean_loss[split].update(loss, weight)
        self.mean_acc[split].update((logits.argmax(dim=-1) == y).float().mean(), weight)

    def _eval_epoch_end(self, split: str) -> None:
        # MeanMetric syncs across ranks in compute(); ppl is exp of the mean token loss, not a mean of ppls.
        loss = self.mean_loss[split].compute()
        self.log_dict(
            {f"{split}/loss": loss, f"{split}/ppl": torch.exp(loss.clamp(max=50.0)), f"{split}/acc": self.mean_acc[split].compute()}
        )
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
        return configure_optimizers(self, self.parameters(), self.optimizer_factory, self.scheduler_factory)


class CausalLMLitModule(NextTokenLitModule):
    """A small GPT (trainers.nets.gpt) trained for next-token prediction; `vocab_size` comes from the
    DataModule. Metrics: NextTokenLitModule's.

    Args:
        vocab_size: number of token ids.
        block_size: context length; must equal the DataModule's `data.block_size`.
        d_model: model width. num_heads: attention heads. num_layers: transformer blocks.
        dropout: dropout rate.
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        d_model: int = 128,
        num_heads: int = 4,
        num_layers: int = 2,
        dropout: float = 0.1,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        for key, value in (("block_size", block_size), ("d_model", d_model), ("num_heads", num_heads), ("num_layers", num_layers)):
            if value <= 0:
                raise SettingError(f"model.{key}", f"must be a positive integer, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise SettingError("model.dropout", f"must be in [0, 1), got {dropout}")
        super().__init__(GPT(vocab_size, block_size, d_model, num_heads, num_layers, dropout), optimizer, scheduler)
        self.save_hyperparameters(
            {
                "vocab_size": vocab_size,
                "block_size": block_size,
                "d_model": d_model,
                "num_heads": num_heads,
                "num_layers": num_layers,
                "dropout": dropout,
            }
        )

    def generate(
        self,
        ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`ids` [B, T] followed by `max_new_tokens` sampled tokens."""
        return self.net.generate(ids, max_new_tokens, temperature, top_k, generator)
