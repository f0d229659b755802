"""Models logged to MLflow: `mlflow.pytorch.log_model` with a signature, an input example and pinned
requirements."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def log_torch_model(model, example_input, name: str = "model"):
    """`mlflow.pytorch.log_model` with a signature and an input example (none when `example_input` is
    None, or the model's output is not one tensor), pinned requirements (no slow requirement inference).
    Returns MLflow's ModelInfo (an MLflow 3 LoggedModel linked to the run)."""
    import importlib.metadata

    import mlflow
    import torch
    from mlflow.models import infer_signature

    signature = None
    if example_input is not None:
        with torch.inference_mode():
            output = model(example_input)
        if isinstance(output, torch.Tensor):
            signature = infer_signature(example_input.numpy(), output.numpy())
    if signature is None:
        log.warning("the model is logged without a signature: its inputs or outputs are not single tensors")
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}", "lightning", "torchmetrics"]
    # Hugging Face models (model=pretrained_encoder) unpickle only beside the libraries that define them.
    libraries = {type(m).__module__.split(".")[0] for m in model.modules()} & {"transformers", "peft"}
    requirements += [f"{name}=={importlib.metadata.version(name)}" for name in sorted(libraries)]
    return mlflow.pytorch.log_model(
        model,
        name=name,
        signature=signature,
        pip_requirements=requirements,
        input_example=None if signature is None else example_input.numpy(),
    )
