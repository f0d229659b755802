"""The distill stage: a smaller student of the teacher's architecture (the teacher's model config with
compression.distill.student merged over it), trained on Ray against the teacher with
trainers.models.distillation: DistillationLitModule for classifiers, NextTokenDistillationLitModule
(KD on the next-token distributions at every position) for language models."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from orchestrator.compression.quality import is_language_model
from orchestrator.compression.ray_fit import fit_best_state
from orchestrator.compression.variant import count_params
from orchestrator.config.build import build_model, datamodule_args
from orchestrator.config.compression import DistillConfig
from orchestrator.errors import ConfigError

DISTILLATION = "trainers.models.distillation.DistillationLitModule"
LM_DISTILLATION = "trainers.models.distillation.NextTokenDistillationLitModule"
STUDENT_KEY = "compression.distill.student"


def student_name(distill: DistillConfig) -> str:
    """The variant's name, from what makes the student smaller: `distill-hidden_dim128`, `distill-num_layers3`."""
    return "-".join(["distill", *(f"{key}{value}" for key, value in sorted(distill.student.items()))])


def student_model_config(config: dict[str, Any], distill: DistillConfig) -> dict[str, Any]:
    return {**config["model"], **distill.student}


def check_distillable(config: dict[str, Any], distill: DistillConfig, datamodule, teacher) -> None:
    """The student builds and has fewer parameters than the teacher, or a ConfigError naming the
    compression.distill.student key (before Ray starts)."""
    fix = f"set ++{STUDENT_KEY}.<model setting>=<value> (e.g. ++{STUDENT_KEY}.hidden_dim=64), or drop distill from compression.stages"
    if not distill.student:
        raise ConfigError(STUDENT_KEY, "is empty, so the student would be the teacher", fix)
    try:
        student = build_model({**config, "model": student_model_config(config, distill)}, datamodule)
    except ConfigError as err:
        setting = err.key.removeprefix("model.")
        if setting in distill.student:
            raise ConfigError(f"{STUDENT_KEY}.{setting}", err.problem, fix) from err
        raise ConfigError(STUDENT_KEY, f"the student does not build: its {err.key} {err.problem}", fix) from err
    student_params, teacher_params = count_params(student)[0], count_params(teacher)[0]
    if student_params >= teacher_params:
        raise ConfigError(
            STUDENT_KEY,
            f"{distill.student} gives a student of {student_params:,} parameters, not fewer than the teacher's {teacher_params:,}",
            fix,
        )


def _standalone(model_config: dict[str, Any], datamodule) -> dict[str, Any]:
    """A model node instantiable on its own (nested in the distillation node): with what the
    orchestrator otherwise supplies from the DataModule (input shape, class count, vocabulary, pad id)."""
    supplied = datamodule_args(model_config, datamodule)
    if "input_shape" in supplied:
        supplied["input_shape"] = list(supplied["input_shape"])  # a plain config value
    return {**model_config, **supplied}


def distillation_config(config: dict[str, Any], distill: DistillConfig, teacher_checkpoint: Path, datamodule) -> dict[str, Any]:
    """The training config of the student: the teacher's config with the distillation LitModule."""
    trained = copy.deepcopy(config)
    trained["trainer"]["max_epochs"] = distill.epochs
    trained["model"] = {
        "_target_": LM_DISTILLATION if is_language_model(config) else DISTILLATION,
        "student": _standalone(student_model_config(config, distill), datamodule),
        "teacher": _standalone(config["model"], datamodule),
        "teacher_weights": str(teacher_checkpoint),
        "init_from_teacher": distill.init_from_teacher,
        "temperature": distill.temperature,
        "alpha": distill.alpha,
    }
    return trained


def distill_student(config: dict[str, Any], distill: DistillConfig, teacher_checkpoint: Path, datamodule, run_id: str, tracking_uri: str):
    """Train the student on Ray into run `run_id`; returns the student LitModule with its best weights."""
    state = fit_best_state(distillation_config(config, distill, teacher_checkpoint, datamodule), run_id, tracking_uri)
    student = build_model({**config, "model": student_model_config(config, distill)}, datamodule)
    # The distillation module holds the student as `net` (and the frozen teacher beside it).
    student.load_state_dict({key[len("net.") :]: value for key, value in state.items() if key.startswith("net.")})
    return student.eval()
