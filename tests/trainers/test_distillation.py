"""DistillationLitModule and WarmStart in a plain lightning.Trainer (no Ray, no orchestrator)."""

from __future__ import annotations

from functools import partial

import lightning
import torch

from trainers.callbacks.warm_start import WarmStart
from trainers.data.digits import DigitsDataModule
from trainers.models.distillation import DistillationLitModule
from trainers.models.mlp import MLPClassifierLitModule
from trainers.models.text_transformer import TextTransformerLitModule


def fit(model, datamodule, epochs=2, callbacks=()):
    trainer = lightning.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, accelerator="cpu", devices=1, callbacks=list(callbacks))
    trainer.fit(model, datamodule=datamodule)
    return trainer


def test_student_learns_from_a_frozen_teacher(tmp_path):
    lightning.seed_everything(0, verbose=False)
    datamodule = DigitsDataModule(batch_size=64)
    adam = partial(torch.optim.Adam, lr=0.01)
    teacher = MLPClassifierLitModule((1, 8, 8), 10, hidden_dim=64, optimizer=adam)
    fit(teacher, datamodule)
    path = tmp_path / "teacher.ckpt"
    torch.save({"state_dict": teacher.state_dict()}, path)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}

    fresh_teacher = MLPClassifierLitModule((1, 8, 8), 10, hidden_dim=64)
    student = MLPClassifierLitModule((1, 8, 8), 10, hidden_dim=16)
    module = DistillationLitModule(student, fresh_teacher, 10, teacher_weights=str(path), temperature=3.0, alpha=0.5,
                                   optimizer=adam)
    trainer = fit(module, datamodule, epochs=3)
    assert not module.teacher.training
    assert all(torch.equal(module.teacher.state_dict()[k], v) for k, v in before.items())  # frozen
    assert trainer.callback_metrics["val/acc"] > 0.8
    logits = torch.randn(8, 10)
    # alpha=0 is plain cross-entropy; the KD term is zero when student and teacher agree
    module.alpha = 0.0
    labels = torch.randint(0, 10, (8,))
    assert torch.isclose(module.distillation_loss(logits, logits, labels), torch.nn.functional.cross_entropy(logits, labels))
    module.alpha = 1.0
    assert module.distillation_loss(logits, logits, labels).abs() < 1e-5


def test_warm_start_keeps_the_zeros_of_a_sparse_model(tmp_path):
    lightning.seed_everything(0, verbose=False)
    datamodule = DigitsDataModule(batch_size=64)
    model = MLPClassifierLitModule((1, 8, 8), 10, hidden_dim=32)
    state = model.state_dict()
    state["net.1.weight"][:, ::2] = 0.0
    path = tmp_path / "start.ckpt"
    torch.save({"state_dict": state}, path)
    tuned = MLPClassifierLitModule((1, 8, 8), 10, hidden_dim=32)
    fit(tuned, datamodule, epochs=1, callbacks=[WarmStart(str(path), keep_sparsity=True)])
    weight = tuned.state_dict()["net.1.weight"]
    assert torch.all(weight[:, ::2] == 0) and torch.all(weight[:, 1::2] != 0)


def test_a_shallower_student_starts_from_the_teachers_first_layers(tmp_path):
    torch.manual_seed(0)
    kwargs = dict(vocab_size=50, num_classes=2, input_shape=(12,), d_model=32, ffn_dim=64)
    teacher = TextTransformerLitModule(**kwargs, num_layers=2)
    path = tmp_path / "teacher.ckpt"
    torch.save({"state_dict": teacher.state_dict()}, path)

    def distilled(init_from_teacher: bool):
        student = TextTransformerLitModule(**kwargs, num_layers=1)
        return DistillationLitModule(student, TextTransformerLitModule(**kwargs, num_layers=2), 2, teacher_weights=str(path),
                                     init_from_teacher=init_from_teacher).net

    copied, fresh = distilled(True).state_dict(), distilled(False).state_dict()
    assert set(copied) < set(teacher.state_dict())  # the student's keys are the teacher's first ones
    for key, value in copied.items():
        assert torch.equal(value, teacher.state_dict()[key]), key
    assert not torch.equal(fresh["net.blocks.0.mlp.0.weight"], teacher.state_dict()["net.blocks.0.mlp.0.weight"])
