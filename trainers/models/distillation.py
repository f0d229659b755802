"""DistillationLitModule: train a student classifier against a frozen teacher's softened logits (KD)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.models.classifier import ClassifierLitModule, OptimizerFactory, SchedulerFactory


class DistillationLitModule(ClassifierLitModule):
    """Hinton et al.'s knowledge distillation: loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T))
    + (1 - alpha) * cross-entropy(s, y). Validation and test measure the student alone.

    The student's weights are the `net.` entries of this module's state_dict; the teacher's are kept
    too (frozen) so a resumed fit needs nothing else.

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
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        super().__init__(student, num_classes, optimizer, scheduler)
        if teacher_weights:
            checkpoint = torch.load(teacher_weights, map_location="cpu", weights_only=True)
            teacher.load_state_dict(checkpoint.get("state_dict", checkpoint))
        if init_from_teacher:
            shapes = {key: value.shape for key, value in student.state_dict().items()}
            student.load_state_dict({key: value for key, value in teacher.state_dict().items()
                                     if key in shapes and shapes[key] == value.shape}, strict=False)
        self.teacher = teacher.requires_grad_(False).eval()
        self.temperature = temperature
        self.alpha = alpha

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher's dropout stays off: its soft targets are deterministic
        return self

    def distillation_loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        soft = F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.softmax(teacher_logits / t, dim=-1), reduction="batchmean")
        return self.alpha * t * t * soft + (1.0 - self.alpha) * F.cross_entropy(student_logits, labels)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        loss = self.distillation_loss(logits, teacher_logits, y)
        self.train_acc(logits, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss
