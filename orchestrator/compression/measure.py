"""Measure a variant the same way as every other: test accuracy and F1, artifact size, parameter
counts, batch-1 latency percentiles and batch-N throughput, in one process with fixed threads."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import numpy as np
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from orchestrator.compression.schema import MeasureConfig
from orchestrator.compression.variant import Variant

log = logging.getLogger(__name__)

METRIC_KEYS = ("test/acc", "test/f1", "acc_drop", "size_bytes", "num_params", "nonzero_params",
               "latency_ms_p50", "latency_ms_p95", "throughput_sps")


@contextmanager
def torch_threads(num_threads: int):
    """Run the block with `num_threads` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def held_out_split(datamodule) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole held-out test split as (inputs, labels)."""
    inputs, labels = [], []
    for x, y in datamodule.test_dataloader():
        inputs.append(x)
        labels.append(y)
    return torch.cat(inputs), torch.cat(labels)


def accuracy(variant: Variant, inputs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """`test/acc` (micro) and `test/f1` (macro), as ClassifierLitModule computes them."""
    with torch.inference_mode():
        logits = torch.cat([variant.predict(batch) for batch in inputs.split(256)])
    return {
        "test/acc": float(MulticlassAccuracy(num_classes, average="micro")(logits, labels)),
        "test/f1": float(MulticlassF1Score(num_classes, average="macro")(logits, labels)),
    }


def _timings_s(call, batches: list[torch.Tensor], num_warmup: int, num_repeats: int) -> np.ndarray:
    for i in range(num_warmup):
        call(batches[i % len(batches)])
    times = np.empty(num_repeats)
    for i in range(num_repeats):
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        call(batch)
        times[i] = time.perf_counter() - start
    return times


def speed(variant: Variant, inputs: torch.Tensor, config: MeasureConfig) -> dict[str, float]:
    """Batch-1 latency percentiles (ms) and throughput (samples/s) at `throughput_batch_size`."""
    singles = list(inputs[: min(len(inputs), 256)].split(1))
    size = config.throughput_batch_size
    repeated = inputs.repeat((size // len(inputs)) + 1, *([1] * (inputs.dim() - 1))) if len(inputs) < size else inputs
    batches = [repeated[i: i + size] for i in range(0, len(repeated) - size + 1, size)]
    with torch.inference_mode():
        latency = _timings_s(variant.predict, singles, config.num_warmup, config.num_repeats) * 1000.0
        batch_s = _timings_s(variant.predict, batches, max(1, config.num_warmup // 10), config.num_throughput_repeats)
    return {
        "latency_ms_p50": float(np.percentile(latency, 50)),
        "latency_ms_p95": float(np.percentile(latency, 95)),
        "throughput_sps": float(size / np.median(batch_s)),
    }


def measure(variant: Variant, inputs: torch.Tensor, labels: torch.Tensor, num_classes: int,
            config: MeasureConfig, baseline_acc: float | None) -> dict[str, float]:
    """Every metric of DESIGN.md's compression contract for one variant."""
    with torch_threads(config.num_threads):
        variant.set_num_threads(config.num_threads)
        metrics = accuracy(variant, inputs, labels, num_classes)
        metrics.update(speed(variant, inputs, config))
    metrics["acc_drop"] = 0.0 if baseline_acc is None else baseline_acc - metrics["test/acc"]
    metrics["size_bytes"] = float(len(variant.serialized()))
    metrics["num_params"] = float(variant.num_params)
    metrics["nonzero_params"] = float(variant.nonzero_params)
    log.info("%s: %s", variant.name, {k: round(v, 4) for k, v in metrics.items()})
    return metrics
