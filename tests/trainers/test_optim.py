"""Fine-tuning pieces in a plain lightning.Trainer: the per-step linear warm-up and decay schedule."""

from __future__ import annotations

import functools

import lightning
import torch

from trainers.data.digits import DigitsDataModule
from trainers.models.mlp import MLPClassifierLitModule
from trainers.optim.schedules import linear_warmup_decay


def test_linear_warmup_rises_then_decays_to_zero():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = linear_warmup_decay(optimizer, num_training_steps=20, warmup_fraction=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    peak = lrs.index(max(lrs))
    assert peak == 2 and max(lrs) == 1.0 and lrs[0] < lrs[1] < lrs[2]  # 2 warm-up steps (10% of 20)
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:], strict=False)) and optimizer.param_groups[0]["lr"] == 0.0


def test_a_fit_steps_the_schedule_every_optimizer_step_over_the_whole_fit(tmp_path):
    dm = DigitsDataModule(batch_size=64)
    model = MLPClassifierLitModule(
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        hidden_dim=16,
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-2),
        scheduler=functools.partial(linear_warmup_decay, warmup_fraction=0.1),
    )
    seen = []

    class Record(lightning.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = lightning.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[Record()],
    )
    trainer.fit(model, datamodule=dm)
    steps = trainer.global_step
    assert len(seen) == steps > 20 and max(seen) == 1e-2  # per step, not per epoch
    assert seen.index(max(seen)) == round(0.1 * steps)
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.0  # decayed to zero at the fit's last step
