"""Quality: how a variant is scored on the held-out split and compared with the baseline. Classifiers:
accuracy and F1, `acc_drop`. Language models: loss and perplexity, `ppl_increase`. One pipeline scores
every variant one way, so all its child runs carry the same metric keys."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.nn import functional as F

Predict = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ClassifierQuality:
    """`test/acc` (micro) and `test/f1` (macro), as ClassifierLitModule computes them; `acc_drop` =
    the baseline's test/acc minus the variant's (gate: compression.max_acc_drop).

    Attributes:
        num_classes: classes of the DataModule.
    """

    num_classes: int
    keys: ClassVar[tuple[str, ...]] = ("test/acc", "test/f1", "acc_drop")
    metric: ClassVar[str] = "test/acc"
    change: ClassVar[str] = "acc_drop"
    higher_is_better: ClassVar[bool] = True

    def score(self, predict: Predict, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        with torch.inference_mode():
            logits = torch.cat([predict(batch) for batch in inputs.split(256)])
        return {
            "test/acc": float(MulticlassAccuracy(self.num_classes, average="micro")(logits, labels)),
            "test/f1": float(MulticlassF1Score(self.num_classes, average="macro")(logits, labels)),
        }

    def change_from(self, baseline: float, value: float) -> float:
        return baseline - value


@dataclass(frozen=True)
class LanguageModelQuality:
    """`test/loss` (mean next-token cross-entropy over every position of the held-out blocks) and
    `test/ppl` = exp(test/loss), as NextTokenLitModule's test loop computes them; `ppl_increase` =
    the variant's test/ppl / the baseline's - 1, relative so that one limit fits a char-level model
    (ppl ~3) and a word-level one (ppl ~100): 0.05 is 5% more perplexed (gate: compression.max_ppl_increase).

    Attributes:
        batch_size: blocks per forward pass (logits are [blocks, block_size, vocab]: a word vocabulary
            makes them large).
    """

    batch_size: int = 16
    keys: ClassVar[tuple[str, ...]] = ("test/loss", "test/ppl", "ppl_increase")
    metric: ClassVar[str] = "test/ppl"
    change: ClassVar[str] = "ppl_increase"
    higher_is_better: ClassVar[bool] = False

    def score(self, predict: Predict, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        total = 0.0
        with torch.inference_mode():
            for ids, targets in zip(inputs.split(self.batch_size), labels.split(self.batch_size), strict=False):
                logits = predict(ids).float()
                total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"))
        loss = total / labels.numel()
        return {"test/loss": loss, "test/ppl": math.exp(min(loss, 50.0))}  # the clamp NextTokenLitModule uses

    def change_from(self, baseline: float, value: float) -> float:
        return value / baseline - 1.0


Quality = ClassifierQuality | LanguageModelQuality


def is_language_model(config: dict[str, Any]) -> bool:
    """Whether `config["model"]` is a next-token language model (a trainers.models.causal_lm
    NextTokenLitModule, like model=causal_lm; a user's own LM subclasses it), not a classifier."""
    from orchestrator.config.build import locate_target
    from trainers.models.causal_lm import NextTokenLitModule

    return issubclass(locate_target("model", config["model"]), NextTokenLitModule)


def quality_of(config: dict[str, Any], datamodule, model, inputs: torch.Tensor) -> Quality:
    """How the variants of `config`'s model are scored. A classifier's class count: its DataModule's or
    its own `num_classes`, else the width of its outputs on `inputs` (a plain LightningModule)."""
    if is_language_model(config):
        return LanguageModelQuality()
    num_classes = getattr(datamodule, "num_classes", None) or getattr(model, "num_classes", None)
    if num_classes is None:
        with torch.inference_mode():
            num_classes = int(model(inputs[:2]).shape[-1])
    return ClassifierQuality(num_classes)
