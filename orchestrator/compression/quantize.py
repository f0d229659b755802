"""The quantize stage's three post-training int8 methods.

ONNX Runtime dynamic int8 is the deployable artifact; torch.ao's dynamic and static int8 are kept to
compare (their figures on this project's CPUs: benchmarks/RESULTS.md). torch.ao is deprecated but
present in torch 2.13.
"""

from __future__ import annotations

import copy
import io
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn


def dynamic_int8(net: nn.Module, engine: str) -> nn.Module:
    """torch.ao dynamic quantization: int8 Linear weights (per output channel) and LSTM weights (per
    tensor, what torch's quantized LSTM takes), activations quantized on the fly."""
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    torch.backends.quantized.engine = engine
    qconfigs = {nn.Linear: per_channel_dynamic_qconfig, nn.LSTM: default_dynamic_qconfig}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(net).eval(), qconfigs, dtype=torch.qint8)


def static_int8(net: nn.Module, engine: str, calibration: list[torch.Tensor]) -> nn.Module:
    """torch.ao FX static quantization: observers calibrate activation ranges on `calibration` batches;
    the engine's default qconfig quantizes weights per channel."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(net).eval(), get_default_qconfig_mapping(engine), (calibration[0],))
        with torch.inference_mode():
            for batch in calibration:
                prepared(batch)
        return convert_fx(prepared)


def onnx_fp32(net: nn.Module, example_input: torch.Tensor, opset: int) -> bytes:
    """The float model as ONNX (input `input`, output `logits`, dynamic batch). The input keeps the
    example's dtype: float features, or int64 token ids padded to the DataModule's fixed length."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            copy.deepcopy(net).eval(),
            (example_input,),
            buffer,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return buffer.getvalue()


def onnx_int8(net: nn.Module, example_input: torch.Tensor, opset: int) -> bytes:
    """ONNX export quantized with ONNX Runtime's `quantize_dynamic` (int8 weights per channel)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="orchestrator-onnx-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(onnx_fp32(net, example_input, opset))
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its "consider pre-processing" advice is logged on the root logger
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.setLevel(level)
        return target.read_bytes()
