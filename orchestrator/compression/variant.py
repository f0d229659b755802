"""Variant: one model a stage produced, behind one interface (predict, serialize, log to MLflow),
whether it is a torch module or an ONNX Runtime session."""

from __future__ import annotations

import io
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


def count_params(module: nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters) of a float module."""
    total = nonzero = 0
    for param in module.parameters():
        total += param.numel()
        nonzero += int(torch.count_nonzero(param))
    return total, nonzero


@dataclass
class Variant:
    """A model to measure and log.

    Attributes:
        name: readable name, also the child run's name and `orchestrator.variant` tag.
        stage: the stage that made it (baseline, prune, quantize, distill).
        num_params: parameters of the float model it was made from (quantization keeps the count).
        nonzero_params: its non-zero parameters.
        params: what made it (sparsity, method, ...), logged as the child run's params.
    """

    name: str
    stage: str
    num_params: int
    nonzero_params: int
    params: dict[str, Any] = field(default_factory=dict)

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of a batch."""
        raise NotImplementedError

    def serialized(self) -> bytes:
        """The deployable artifact's bytes (its size is `size_bytes`)."""
        raise NotImplementedError

    def log_model(self, example_input: torch.Tensor):
        """Log the model into the active MLflow run; returns MLflow's ModelInfo."""
        raise NotImplementedError

    def set_num_threads(self, num_threads: int) -> None:
        """Intra-op threads for inference (torch variants use torch's global setting)."""


@dataclass
class TorchVariant(Variant):
    """A torch module (float, pruned, distilled, or torch.ao-quantized).

    Attributes:
        module: the network.
        scripted: log it as TorchScript (quantized modules, which torch.export cannot export yet);
            otherwise as MLflow's default torch.export program.
    """

    module: nn.Module | None = None
    scripted: bool = False

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.module(inputs)

    def serialized(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(self.module.state_dict(), buffer)
        return buffer.getvalue()

    def log_model(self, example_input: torch.Tensor):
        import mlflow
        from mlflow.models import infer_signature

        from orchestrator.tracking.models import log_torch_model

        if not self.scripted:
            return log_torch_model(self.module, example_input)
        from lightning import LightningModule

        with torch.inference_mode():
            # A LightningModule (a user's, quantized whole) is traced through its own to_torchscript:
            # torch.jit.trace reads every attribute, and `trainer` raises outside a Trainer.
            if isinstance(self.module, LightningModule):
                with warnings.catch_warnings():  # "to_torchscript has been deprecated": so is all of TorchScript
                    warnings.filterwarnings("ignore", message=r".*to_torchscript.*deprecated.*")
                    scripted = self.module.to_torchscript(method="trace", example_inputs=example_input)
            else:
                scripted = torch.jit.trace(self.module, example_input)
            output = scripted(example_input)
        # TorchScript (a quantized module) saves only as a pickle: MLflow's warnings about that format, and
        # torch's when MLflow reloads the archive with torch.load to check the input example, say nothing
        # a user acts on.
        with warnings.catch_warnings(), _logger_level("mlflow.pytorch", logging.ERROR):
            warnings.filterwarnings("ignore", message=r".*looks like a TorchScript archive.*")
            return mlflow.pytorch.log_model(
                scripted,
                name="model",
                serialization_format="pickle",
                signature=infer_signature(example_input.numpy(), output.numpy()),
                input_example=example_input.numpy(),
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
            )


@contextmanager
def _logger_level(name: str, level: int):
    """Run the block with logger `name` at `level`, then restore its level."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


@dataclass
class OnnxVariant(Variant):
    """An ONNX model run by ONNX Runtime on CPU (input `input`, output `logits`)."""

    model_bytes: bytes = b""
    _session: Any = None

    def set_num_threads(self, num_threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(self.model_bytes, options, providers=["CPUExecutionProvider"])

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        if self._session is None:
            self.set_num_threads(1)
        return torch.from_numpy(self._session.run(None, {"input": inputs.numpy()})[0])

    def serialized(self) -> bytes:
        return self.model_bytes

    def log_model(self, example_input: torch.Tensor):
        import mlflow
        import onnx
        from mlflow.models import infer_signature

        output = self.predict(example_input).numpy()
        signature = infer_signature(example_input.numpy(), output)
        return mlflow.onnx.log_model(
            onnx.load_from_string(self.model_bytes),
            name="model",
            signature=signature,
            input_example=example_input.numpy(),
            save_as_external_data=False,
            pip_requirements=[f"onnx=={onnx.__version__}", f"onnxruntime=={_onnxruntime_version()}", f"mlflow=={mlflow.__version__}"],
        )


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
