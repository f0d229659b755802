"""The distill stage: a smaller student of the teacher's architecture (model.hidden_dim =
compression.distill.student_hidden_dim), trained on Ray against the teacher with
trainers.models.distillation.DistillationLitModule."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

from orchestrator.build import build_model, locate_target
from orchestrator.compression.ray_fit import fit_best_state
from orchestrator.compression.schema import DistillConfig
from orchestrator.errors import ConfigError

DISTILLATION = "trainers.models.distillation.DistillationLitModule"


def check_distillable(config: dict[str, Any]) -> None:
    """The student is the teacher with a smaller model.hidden_dim: the model must have one."""
    if "hidden_dim" not in config["model"]:
        raise ConfigError("model.hidden_dim", "the distill stage sizes its student by model.hidden_dim, and this model has none",
                          "drop distill from compression.stages, or use a model with hidden_dim")


def student_model_config(config: dict[str, Any], hidden_dim: int) -> dict[str, Any]:
    return {**config["model"], "hidden_dim": hidden_dim}


def _standalone(model_config: dict[str, Any], datamodule) -> dict[str, Any]:
    """A model node instantiable on its own (nested in the distillation node): with the input shape and
    class count the orchestrator otherwise supplies."""
    node = dict(model_config)
    accepted = inspect.signature(locate_target("model", node).__init__).parameters
    if "input_shape" in accepted and "input_shape" not in node:
        node["input_shape"] = list(datamodule.input_shape)
    if "num_classes" in accepted and "num_classes" not in node:
        node["num_classes"] = datamodule.num_classes
    return node


def distillation_config(config: dict[str, Any], distill: DistillConfig, teacher_checkpoint: Path, datamodule) -> dict[str, Any]:
    """The training config of the student: the teacher's config with the distillation LitModule."""
    trained = copy.deepcopy(config)
    trained["trainer"]["max_epochs"] = distill.epochs
    trained["model"] = {
        "_target_": DISTILLATION,
        "student": _standalone(student_model_config(config, distill.student_hidden_dim), datamodule),
        "teacher": _standalone(config["model"], datamodule),
        "teacher_weights": str(teacher_checkpoint),
        "temperature": distill.temperature,
        "alpha": distill.alpha,
    }
    return trained


def distill_student(config: dict[str, Any], distill: DistillConfig, teacher_checkpoint: Path, datamodule,
                    run_id: str, tracking_uri: str):
    """Train the student on Ray into run `run_id`; returns the student LitModule with its best weights."""
    state = fit_best_state(distillation_config(config, distill, teacher_checkpoint, datamodule), run_id, tracking_uri)
    student = build_model({**config, "model": student_model_config(config, distill.student_hidden_dim)}, datamodule)
    # The distillation module holds the student as `net` (and the frozen teacher beside it).
    student.load_state_dict({key[len("net."):]: value for key, value in state.items() if key.startswith("net.")})
    return student.eval()
