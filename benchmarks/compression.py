"""The pipeline's int8 variant against hand-written quantization of the same Linear-heavy model, and
structured pruning's MAC ratio against its measured latency ratio.

    python benchmarks/compression.py [--quick] [--repeats N]

One process, 1 intra-op thread everywhere (torch and ONNX Runtime), every variant timed by the
product's own measurement (orchestrator/compression/measure.py `speed`: batch-1 latency percentiles
and batch-64 throughput), arms interleaved per repeat. Model: MLP 512-1024-1024-10 (the bundled
MLPClassifierLitModule), trained 3 epochs from a fixed seed; inputs: SyntheticDataModule's test split.
Arms:
  ours fp32          the pipeline's baseline variant (TorchVariant of the float net)
  ours int8 (onnx)   the pipeline's deployable int8 variant (quantize.onnx_int8: ONNX Runtime, per-channel)
  ours int8 (torch)  the pipeline's torch.ao variant (quantize.dynamic_int8, per-channel)
  ours pruned 50%    the pipeline's structured pruning (prune.prune_structured, Torch-Pruning)
  peer onnx fp32     torch.onnx.export, run by ONNX Runtime
  peer ort int8      hand-written onnxruntime.quantization.quantize_dynamic (its defaults)
  peer torch.ao int8 hand-written torch.ao.quantization.quantize_dynamic (its defaults)
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from pathlib import Path

import harness
import torch
from torch import nn


def build_model(num_epochs: int = 3):
    from trainers.data.synthetic import SyntheticDataModule
    from trainers.models.mlp import MLPClassifierLitModule

    torch.manual_seed(harness.SEED)
    datamodule = SyntheticDataModule(num_samples=2048, num_features=512, num_classes=10, seed=harness.SEED)
    datamodule.setup()
    model = MLPClassifierLitModule(input_shape=datamodule.input_shape, num_classes=10, hidden_dim=1024, num_layers=2, dropout=0.0)
    # A few epochs of plain training, so top-1 agreement with fp32 means something (not random logits).
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    features, labels = datamodule.splits["train"].tensors
    for _ in range(num_epochs):
        for batch in torch.randperm(len(labels)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(features[batch]), labels[batch]).backward()
            optimizer.step()
    return model.eval(), datamodule.splits["test"].tensors[0]


def peer_ort_int8(net: nn.Module, example: torch.Tensor) -> bytes:
    """What a user writes by hand: export, then ONNX Runtime's quantize_dynamic with its defaults."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (example,),
                source,
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        logging.getLogger().setLevel(logging.ERROR)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return target.read_bytes()


def peer_torch_int8(net: nn.Module) -> nn.Module:
    """What a user writes by hand: torch.ao's quantize_dynamic with its defaults."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(net), {nn.Linear}, dtype=torch.qint8)


def macs(net: nn.Module, example: torch.Tensor) -> float:
    import torch_pruning as tp

    ops, _ = tp.utils.count_ops_and_params(net, example)
    return float(ops)


def main() -> None:
    from orchestrator.compression import prune, quantize
    from orchestrator.compression.measure import speed
    from orchestrator.compression.variant import OnnxVariant, TorchVariant, count_params
    from orchestrator.config.compression import MeasureConfig

    args = harness.parse_args(__doc__.splitlines()[0], default_repeats=5, quick_repeats=3)
    harness.set_threads(1)
    measure_config = (
        MeasureConfig(num_threads=1, num_warmup=20, num_repeats=200, num_throughput_repeats=30)
        if args.quick
        else MeasureConfig(num_threads=1)
    )  # the pipeline's defaults (conf/compression/default.yaml)
    model, inputs = build_model()
    net, example = model.net, inputs[:2].clone()
    total, nonzero = count_params(net)
    common = dict(stage="quantize", num_params=total, nonzero_params=nonzero)
    pruned = prune.prune_structured(model, "net", 0.5, example).net.eval()
    variants = {
        "ours fp32": TorchVariant(name="baseline", stage="baseline", num_params=total, nonzero_params=nonzero, module=net),
        "ours int8 (onnx)": OnnxVariant(name="quantize-onnx-int8", **common, model_bytes=quantize.onnx_int8(net, example, 17)),
        "ours int8 (torch)": TorchVariant(name="quantize-dynamic-int8", **common, module=quantize.dynamic_int8(net, "x86")),
        "ours pruned 50%": TorchVariant(
            name="prune-structured-50",
            stage="prune",
            num_params=count_params(pruned)[0],
            nonzero_params=count_params(pruned)[1],
            module=pruned,
        ),
        "peer onnx fp32": OnnxVariant(name="onnx-fp32", **common, model_bytes=quantize.onnx_fp32(net, example, 17)),
        "peer ort int8": OnnxVariant(name="ort-int8", **common, model_bytes=peer_ort_int8(net, example)),
        "peer torch.ao int8": TorchVariant(name="torch-ao-int8", **common, module=peer_torch_int8(net)),
    }
    with torch.inference_mode():
        reference = net(inputs).argmax(-1)
    static: dict[str, dict[str, float]] = {}
    for name, variant in variants.items():
        variant.set_num_threads(1)
        with torch.inference_mode():
            agreement = float((variant.predict(inputs).argmax(-1) == reference).float().mean())
        size = float(len(variant.serialized()))
        static[name] = {"size_bytes": size, "size_mb": size / 1e6, "agreement": agreement}

    def arm(name):
        def run(repeat: int) -> dict[str, float]:
            return {**static[name], **speed(variants[name], inputs, measure_config)}

        return run

    results = harness.interleave({name: arm(name) for name in variants}, args.repeats)
    med = lambda arm_name, key: harness.median(results, arm_name, key)  # noqa: E731
    base_macs, pruned_macs = macs(net, example[:1]), macs(pruned, example[:1])
    keys = {
        "int8_size_ratio": med("ours fp32", "size_bytes") / med("ours int8 (onnx)", "size_bytes"),
        "int8_latency_speedup": med("ours fp32", "latency_ms_p50") / med("ours int8 (onnx)", "latency_ms_p50"),
        "int8_throughput_speedup": med("ours int8 (onnx)", "throughput_sps") / med("ours fp32", "throughput_sps"),
        "int8_latency_vs_peer_ort": med("peer ort int8", "latency_ms_p50") / med("ours int8 (onnx)", "latency_ms_p50"),
        "int8_latency_vs_peer_torch_ao": med("peer torch.ao int8", "latency_ms_p50") / med("ours int8 (onnx)", "latency_ms_p50"),
        "prune_mac_ratio": base_macs / pruned_macs,
        "prune_latency_speedup": med("ours fp32", "latency_ms_p50") / med("ours pruned 50%", "latency_ms_p50"),
        "prune_throughput_speedup": med("ours pruned 50%", "throughput_sps") / med("ours fp32", "throughput_sps"),
    }
    text = "\n".join(
        [
            harness.header(
                "compression",
                args,
                {
                    "model": "MLP 512-1024-1024-10",
                    "threads": 1,
                    "measure": measure_config,
                    "macs_fp32": f"{base_macs:.3g}",
                    "macs_pruned_50": f"{pruned_macs:.3g}",
                },
            ),
            harness.table(
                results,
                [
                    ("size_mb", "size MB"),
                    ("latency_ms_p50", "batch-1 p50 ms"),
                    ("latency_ms_p95", "batch-1 p95 ms"),
                    ("throughput_sps", f"batch-{measure_config.throughput_batch_size} samples/s"),
                    ("agreement", "top-1 agreement with fp32"),
                ],
            ),
        ]
    )
    harness.finish("compression", text, keys)


if __name__ == "__main__":
    main()
