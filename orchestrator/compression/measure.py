"""Measure a variant the same way as every other: its quality on the held-out split (accuracy and F1 of a
classifier, loss and perplexity of a language model: quality.py), artifact size, parameter counts,
batch-1 latency percentiles and batch-N throughput, in one process with fixed threads."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import numpy as np
import torch

from orchestrator.compression.quality import (
    ClassifierQuality,
    LanguageModelQuality,
    Quality,
)
from orchestrator.compression.variant import Variant
from orchestrator.config.compression import MeasureConfig

log = logging.getLogger(__name__)

SIZE_AND_SPEED_KEYS = ("size_bytes", "num_params", "nonzero_params", "latency_ms_p50", "latency_ms_p95", "throughput_sps")
# Every variant of a classifier's pipeline logs METRIC_KEYS; of a language model's, LM_METRIC_KEYS.
METRIC_KEYS = (*ClassifierQuality.keys, *SIZE_AND_SPEED_KEYS)
LM_METRIC_KEYS = (*LanguageModelQuality.keys, *SIZE_AND_SPEED_KEYS)


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
    """The whole held-out test split as (inputs, labels): batches of (input, target, ...) tensors."""
    from orchestrator.errors import ConfigError
    from orchestrator.training.evaluate import batch_parts

    inputs, labels = [], []
    for batch in datamodule.test_dataloader():
        x, y = batch_parts(batch)
        if x is None or y is None:
            raise ConfigError(
                "data._target_",
                f"{type(datamodule).__name__}'s test batches are not (input, target) tensors",
                "compression measures every variant on test batches shaped as (inputs, labels)",
            )
        inputs.append(x)
        labels.append(y)
    return torch.cat(inputs), torch.cat(labels)


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
    """Batch-1 latency percentiles (ms) and throughput (samples/s) at `throughput_batch_size`; a sample
    is one row of `inputs` (a language model's: one block of token ids)."""
    singles = list(inputs[: min(len(inputs), 256)].split(1))
    size = config.throughput_batch_size
    repeated = inputs.repeat((size // len(inputs)) + 1, *([1] * (inputs.dim() - 1))) if len(inputs) < size else inputs
    batches = [repeated[i : i + size] for i in range(0, len(repeated) - size + 1, size)]
    with torch.inference_mode():
        latency = _timings_s(variant.predict, singles, config.num_warmup, config.num_repeats) * 1000.0
        batch_s = _timings_s(variant.predict, batches, max(1, config.num_warmup // 10), config.num_throughput_repeats)
    return {
        "latency_ms_p50": float(np.percentile(latency, 50)),
        "latency_ms_p95": float(np.percentile(latency, 95)),
        "throughput_sps": float(size / np.median(batch_s)),
    }


def measure(
    variant: Variant, inputs: torch.Tensor, labels: torch.Tensor, quality: Quality, config: MeasureConfig, baseline: float | None
) -> dict[str, float]:
    """Every metric of the compression contract (docs/architecture.md) for one variant: `quality.keys` (its change
    against `baseline`, the baseline's `quality.metric`; 0 for the baseline itself, None) and
    SIZE_AND_SPEED_KEYS."""
    with torch_threads(config.num_threads):
        variant.set_num_threads(config.num_threads)
        metrics = quality.score(variant.predict, inputs, labels)
        metrics.update(speed(variant, inputs, config))
    metrics[quality.change] = 0.0 if baseline is None else quality.change_from(baseline, metrics[quality.metric])
    metrics["size_bytes"] = float(len(variant.serialized()))
    metrics["num_params"] = float(variant.num_params)
    metrics["nonzero_params"] = float(variant.nonzero_params)
    log.debug("%s: %s", variant.name, {k: round(v, 4) for k, v in metrics.items()})  # the table shows them
    return metrics
