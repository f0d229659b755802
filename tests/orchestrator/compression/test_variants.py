"""Each compression method on a real (briefly trained) digits MLP, without Ray: the variant is smaller
or sparser as configured, still loads and predicts, and is measured with every metric."""

from __future__ import annotations

import io

import lightning
import pytest
import torch

from orchestrator.compression import prune, quantize
from orchestrator.compression.measure import METRIC_KEYS, held_out_split, measure
from orchestrator.compression.quality import ClassifierQuality
from orchestrator.compression.variant import OnnxVariant, TorchVariant, count_params
from orchestrator.config.compression import MeasureConfig
from trainers.callbacks.warm_start import resize_to
from trainers.data.digits import DigitsDataModule
from trainers.models.mlp import MLPClassifierLitModule

MEASURE = MeasureConfig(num_warmup=5, num_repeats=50, num_throughput_repeats=5)


@pytest.fixture(scope="module")
def trained():
    lightning.seed_everything(0, verbose=False)
    datamodule = DigitsDataModule(batch_size=64)
    model = MLPClassifierLitModule((1, 8, 8), 10, hidden_dim=64, dropout=0.0)
    trainer = lightning.Trainer(
        max_epochs=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, datamodule=datamodule)
    inputs, labels = held_out_split(datamodule)
    return model.eval(), datamodule, inputs, labels


def state_bytes(module) -> int:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return len(buffer.getvalue())


def accuracy(module, inputs, labels) -> float:
    with torch.inference_mode():
        return float((module(inputs).argmax(-1) == labels).float().mean())


def test_unstructured_pruning_is_permanent_and_as_sparse_as_asked(trained):
    model, _, inputs, labels = trained
    pruned = prune.prune_unstructured(model, 0.8)
    weights = [m.weight for m in prune.prunable_layers(pruned.net)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.8, abs=0.01)
    assert not any(k.endswith(("_orig", "_mask")) for k in pruned.state_dict())  # no masks left
    total, nonzero = count_params(pruned.net)
    assert nonzero / total < 0.25
    assert accuracy(pruned.net, inputs, labels) > 0.5
    assert count_params(model.net)[1] == count_params(model.net)[0]  # the original is untouched


def test_structured_pruning_removes_neurons_and_reloads_into_a_fresh_model(trained):
    model, _, inputs, labels = trained
    pruned = prune.prune_structured(model, "net", 0.5, inputs[:2])
    hidden = [m.out_features for m in prune.prunable_layers(pruned.net)]
    assert hidden == [32, 32, 10]
    assert count_params(pruned.net)[0] < 0.4 * count_params(model.net)[0]
    assert state_bytes(pruned.net) < 0.5 * state_bytes(model.net)
    # What a fine-tune worker does: build the configured model, then take the pruned shapes and weights.
    fresh = MLPClassifierLitModule((1, 8, 8), 10, hidden_dim=64, dropout=0.0).eval()
    resize_to(fresh, pruned.state_dict())
    assert [m.in_features for m in prune.prunable_layers(fresh.net)] == [64, 32, 32]
    assert torch.equal(fresh(inputs), pruned(inputs))


def test_int8_variants_are_smaller_and_agree_with_the_float_model(trained):
    model, datamodule, inputs, labels = trained
    baseline = accuracy(model.net, inputs, labels)
    calibration = [x for x, _ in list(datamodule.train_dataloader())[:4]]
    dynamic = quantize.dynamic_int8(model.net, "x86")
    static = quantize.static_int8(model.net, "x86", calibration)
    for module in (dynamic, static):
        assert state_bytes(module) < 0.5 * state_bytes(model.net)
        assert abs(accuracy(module, inputs, labels) - baseline) < 0.03
    onnx_bytes = quantize.onnx_int8(model.net, inputs[:2], 17)
    assert len(onnx_bytes) < 0.5 * len(quantize.onnx_fp32(model.net, inputs[:2], 17))
    onnx_variant = OnnxVariant("onnx", "quantize", 1, 1, model_bytes=onnx_bytes)
    assert abs(accuracy(onnx_variant.predict, inputs, labels) - baseline) < 0.03


def test_measure_gives_every_metric(trained):
    model, datamodule, inputs, labels = trained
    total, nonzero = count_params(model.net)
    variant = TorchVariant("baseline", "baseline", total, nonzero, module=model.net)
    metrics = measure(variant, inputs, labels, ClassifierQuality(datamodule.num_classes), MEASURE, baseline=None)
    assert set(METRIC_KEYS) <= set(metrics)
    assert metrics["acc_drop"] == 0 and metrics["size_bytes"] == state_bytes(model.net)
    assert 0 < metrics["latency_ms_p50"] <= metrics["latency_ms_p95"] and metrics["throughput_sps"] > 0
    onnx = OnnxVariant("onnx", "quantize", total, nonzero, model_bytes=quantize.onnx_int8(model.net, inputs[:2], 17))
    measured = measure(onnx, inputs, labels, ClassifierQuality(datamodule.num_classes), MEASURE, baseline=metrics["test/acc"])
    assert measured["acc_drop"] == pytest.approx(metrics["test/acc"] - measured["test/acc"])
    assert measured["size_bytes"] < metrics["size_bytes"] / 2.5
