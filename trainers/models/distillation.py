"""Knowledge distillation: a student trained against a frozen teacher's softened logits (KD), for
classifiers (DistillationLitModule) and next-token language models (NextTokenDistillationLitModule)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.errors import SettingError
from trainers.models.causal_lm import NextTokenLitModule
from trainers.models.classifier import (
    ClassifierLitModule,
    OptimizerFactory,
    SchedulerFactory,
)


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, temperature: float, alpha: float
) -> torch.Tensor:
    """Hinton et al.'s KD loss: alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * cross-entropy(s, y).

    The distributions run over the last dimension and every leading position is one of them: a
    classifier's logits [B, C] give B, a language model's [B, T, vocab] give B*T next-token
    distributions; both terms are means over them, so their weights do not depend on T.
    """
    size = student_logits.shape[-1]
    student, teacher = student_logits.reshape(-1, size), teacher_logits.reshape(-1, size)
    t = temperature
    soft = F.kl_div(F.log_softmax(student / t, dim=-1), F.softmax(teacher / t, dim=-1), reduction="batchmean")
    return alpha * t * t * soft + (1.0 - alpha) * F.cross_entropy(student, targets.reshape(-1))


class KnowledgeDistillation:
    """What turns a LitModule into the distillation of its `net` (the student): a frozen teacher beside
    it and the KD loss in place of its `training_loss(inputs, logits, targets)`. Listed before that
    LitModule class (`class X(KnowledgeDistillation, ClassifierLitModule)`); its __init__ calls
    `attach_teacher` after the LitModule's. Validation and test measure the student alone.

    The student's weights are the `net.` entries of the state_dict; the teacher's are kept too
    (frozen), so a resumed fit needs nothing else.
    """

    teacher: nn.Module
    temperature: float
    alpha: float

    def attach_teacher(
        self, teacher: nn.Module, teacher_weights: str | None, init_from_teacher: bool, temperature: float, alpha: float
    ) -> None:
        """Load the teacher (a Lightning checkpoint, weights_only=True), optionally copy its weights into
        the student where names and shapes match, and freeze it."""
        if temperature <= 0:
            raise SettingError("compression.distill.temperature", f"must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise SettingError("compression.distill.alpha", f"must be in [0, 1], got {alpha}")
        if teacher_weights:
            checkpoint = torch.load(teacher_weights, map_location="cpu", weights_only=True)
            teacher.load_state_dict(checkpoint.get("state_dict", checkpoint))
        if init_from_teacher:
            shapes = {key: value.shape for key, value in self.net.state_dict().items()}
            self.net.load_state_dict(
                {key: value for key, value in teacher.state_dict().items() if key in shapes and shapes[key] == value.shape}, strict=False
            )
        # Frozen, and in eval mode from the start of training on (on_train_start): Lightning expects every
        # module in train mode when fit starts, and says so for each one that is not.
        self.teacher = teacher.requires_grad_(False)
        self.temperature = temperature
        self.alpha = alpha

    def on_train_start(self) -> None:
        super().on_train_start()
        self.teacher_in_eval = True
        self.teacher.eval()  # the teacher's dropout stays off: its soft targets are deterministic

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "teacher_in_eval", False):  # from on_train_start on, whatever sets train mode
            self.teacher.eval()
        return self

    def training_loss(self, inputs: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        return distillation_loss(logits, teacher_logits, targets, self.temperature, self.alpha)


class DistillationLitModule(KnowledgeDistillation, ClassifierLitModule):
    """A student classifier trained against a frozen teacher classifier (KnowledgeDistillation).

    Args:
        student: the student network or LitModule (inputs -> logits); the one being trained.
        teacher: the teacher, of the architecture its weights were saved from.
        num_classes: number of classes.
        teacher_weights: a Lightning checkpoint of the teacher (loaded with weights_only=True); null when
            the teacher passed in is already trained.
        init_from_teacher: copy the teacher's weights into the student wherever a parameter or buffer has
            the same name and shape (a student with the teacher's first layers starts from them).
        temperature: softmax temperature T of the KD term.
        alpha: weight of the KD term; 1 - alpha weighs the label term.
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        num_classes: int,
        teacher_weights: str | None = None,
        init_from_teacher: bool = False,
        temperature: float = 4.0,
        alpha: float = 0.7,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        super().__init__(student, num_classes, optimizer, scheduler)
        self.attach_teacher(teacher, teacher_weights, init_from_teacher, temperature, alpha)


class NextTokenDistillationLitModule(KnowledgeDistillation, NextTokenLitModule):
    """A student language model trained against a frozen teacher's next-token distributions at every
    position (KnowledgeDistillation), plus the LM cross-entropy; logs what NextTokenLitModule logs.

    Args: those of DistillationLitModule, without num_classes (student and teacher: ids -> logits
    [B, T, vocab], e.g. two CausalLMLitModules of different depth).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        teacher_weights: str | None = None,
        init_from_teacher: bool = False,
        temperature: float = 4.0,
        alpha: float = 0.7,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        super().__init__(student, optimizer, scheduler)
        self.attach_teacher(teacher, teacher_weights, init_from_teacher, temperature, alpha)
