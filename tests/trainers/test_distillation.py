"""Distillation (classifiers and language models) and WarmStart in a plain lightning.Trainer (no Ray, no orchestrator)."""

from __future__ import annotations

import warnings
from functools import partial

import lightning
import torch
from text_samples import write_corpus

from trainers.callbacks.warm_start import WarmStart
from trainers.data.digits import DigitsDataModule
from trainers.data.text_corpus import TextCorpusDataModule
from trainers.models.causal_lm import CausalLMLitModule
from trainers.models.distillation import (
    DistillationLitModule,
    NextTokenDistillationLitModule,
    distillation_loss,
)
from trainers.models.mlp import MLPClassifierLitModule
from trainers.models.text_transformer import TextTransformerLitModule


def fit(model, datamodule, epochs=2, callbacks=()):
    trainer = lightning.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        callbacks=list(callbacks),
    )
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
    module = DistillationLitModule(student, fresh_teacher, 10, teacher_weights=str(path), temperature=3.0, alpha=0.5, optimizer=adam)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = fit(module, datamodule, epochs=3)
    assert not module.teacher.training and module.net.training
    assert not [w for w in caught if "eval mode" in str(w.message)]  # Lightning's "Found N module(s) in eval mode"
    assert all(torch.equal(module.teacher.state_dict()[k], v) for k, v in before.items())  # frozen
    assert trainer.callback_metrics["val/acc"] > 0.8
    logits = torch.randn(8, 10)
    # alpha=0 is plain cross-entropy; the KD term is zero when student and teacher agree
    labels = torch.randint(0, 10, (8,))
    assert torch.isclose(distillation_loss(logits, logits, labels, 3.0, 0.0), torch.nn.functional.cross_entropy(logits, labels))
    assert distillation_loss(logits, logits, labels, 3.0, 1.0).abs() < 1e-5


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
        return DistillationLitModule(
            student, TextTransformerLitModule(**kwargs, num_layers=2), 2, teacher_weights=str(path), init_from_teacher=init_from_teacher
        ).net

    copied, fresh = distilled(True).state_dict(), distilled(False).state_dict()
    assert set(copied) < set(teacher.state_dict())  # the student's keys are the teacher's first ones
    for key, value in copied.items():
        assert torch.equal(value, teacher.state_dict()[key]), key
    assert not torch.equal(fresh["net.blocks.0.mlp.0.weight"], teacher.state_dict()["net.blocks.0.mlp.0.weight"])


def test_lm_kd_loss_is_a_mean_over_positions_and_lowers_as_the_student_matches_the_teacher():
    torch.manual_seed(0)
    teacher = torch.randn(2, 5, 11) * 3  # [batch, positions, vocab]
    targets = torch.randint(0, 11, (2, 5))
    per_position = [
        distillation_loss(torch.zeros(1, 11), teacher[b, t][None], targets[b, t][None], 2.0, 0.6) for b in range(2) for t in range(5)
    ]
    assert torch.isclose(distillation_loss(torch.zeros(2, 5, 11), teacher, targets, 2.0, 0.6), torch.stack(per_position).mean())
    assert distillation_loss(teacher, teacher, targets, 2.0, 1.0).abs() < 1e-5

    student = torch.zeros(2, 5, 11, requires_grad=True)
    optimizer = torch.optim.Adam([student], lr=0.1)
    losses = []
    for _ in range(200):
        loss = distillation_loss(student, teacher, targets, 2.0, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.02 * losses[0]
    assert torch.equal(student.argmax(-1), teacher.argmax(-1))  # the student predicts the teacher's next tokens


def test_a_shallower_language_model_learns_the_teachers_next_token_distributions(tmp_path):
    lightning.seed_everything(0, verbose=False)
    datamodule = TextCorpusDataModule(str(write_corpus(tmp_path, 200)), block_size=32, cache_dir=str(tmp_path / "c"))
    kwargs = dict(vocab_size=datamodule.vocab_size, block_size=32, d_model=48, dropout=0.0)
    adamw = partial(torch.optim.AdamW, lr=3e-3)
    teacher = CausalLMLitModule(**kwargs, num_layers=2, optimizer=adamw)
    fit(teacher, datamodule, epochs=2)
    path = tmp_path / "teacher.ckpt"
    torch.save({"state_dict": teacher.state_dict()}, path)
    ids = datamodule.splits["val"].tokens[: 4 * 32].view(4, 32)

    def kl_to_teacher(student) -> float:
        with torch.no_grad():
            return float(distillation_loss(student(ids), teacher.eval()(ids), ids, 1.0, 1.0))

    student = CausalLMLitModule(**kwargs, num_layers=1)
    before = kl_to_teacher(student)  # dropout 0: train and eval mode agree
    module = NextTokenDistillationLitModule(
        student, CausalLMLitModule(**kwargs, num_layers=2), teacher_weights=str(path), temperature=2.0, alpha=0.8, optimizer=adamw
    )
    trainer = fit(module, datamodule, epochs=2)
    assert not module.teacher.training and not any(p.requires_grad for p in module.teacher.parameters())
    assert kl_to_teacher(module.net.eval()) < 0.3 * before
    assert {"val/ppl", "val/loss", "train/loss"} <= set(trainer.callback_metrics)
    assert trainer.callback_metrics["val/ppl"] < datamodule.vocab_size / 2
    # what the distill stage does with the best checkpoint: the `net.` entries are the student LitModule's
    rebuilt = CausalLMLitModule(**kwargs, num_layers=1).eval()
    rebuilt.load_state_dict({k[len("net.") :]: v for k, v in module.state_dict().items() if k.startswith("net.")})
    assert torch.equal(rebuilt(ids), module.net(ids))
