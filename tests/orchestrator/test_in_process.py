"""A grid trial trained in its own process: CheckpointKeeper keeps what Ray's CheckpointConfig would
(the best num_to_keep by the monitor, and the latest), and result() gives train.py a Ray Result."""

from __future__ import annotations

import lightning
import pytest
import torch

from orchestrator.runtime.checkpoints import CHECKPOINT_NAME, read_checkpoint
from orchestrator.runtime.in_process import CheckpointKeeper, result
from orchestrator.runtime.trials import fits_in_process


class ScriptedScore(lightning.Callback):
    """Logs a made-up val/acc per epoch, so which checkpoints are best is known in advance."""

    def __init__(self, scores):
        self.scores = scores

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.log("val/acc", self.scores[trainer.current_epoch])


class Tiny(lightning.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, _):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize(
    "num_to_keep, kept",
    [(1, ["checkpoint_000001", "checkpoint_000004"]), (2, ["checkpoint_000001", "checkpoint_000003", "checkpoint_000004"])],
)
def test_keeps_the_best_and_the_latest_and_reports_them_as_ray_would(tmp_path, num_to_keep, kept):
    scores = [0.5, 0.9, 0.6, 0.8, 0.7]  # best: epoch 1, then epoch 3; latest: epoch 4
    run_dir = tmp_path / "run"
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=4)
    trainer = lightning.Trainer(
        max_epochs=5,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ScriptedScore(scores), CheckpointKeeper(str(run_dir), "val/acc", "max", num_to_keep)],
    )
    trainer.fit(Tiny(), data)

    assert sorted(p.name for p in run_dir.iterdir()) == kept
    fitted = result(run_dir)
    assert fitted.path == str(run_dir)
    assert fitted.checkpoint.path.endswith("checkpoint_000004") and fitted.metrics["epoch"] == 4
    assert fitted.get_best_checkpoint("val/acc", "max").path.endswith("checkpoint_000001")
    assert read_checkpoint(run_dir / "checkpoint_000001" / CHECKPOINT_NAME)["epoch"] == 1


class ValidatesLossOnly(Tiny):
    def validation_step(self, batch, _):
        self.log("val/loss", self.layer(batch[0]).sum())


def test_a_module_that_does_not_log_the_monitor_keeps_the_latest_only(tmp_path):
    run_dir = tmp_path / "run"
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=4)
    trainer = lightning.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                                num_sanity_val_steps=0, callbacks=[CheckpointKeeper(str(run_dir), "val/acc", "max", 1)])  # fmt: skip
    trainer.fit(ValidatesLossOnly(), data, data)  # Lightning's own ModelCheckpoint raises here: val/acc is never logged
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint_000002"]
    assert result(run_dir).checkpoint.path.endswith("checkpoint_000002")


def test_only_a_local_single_cpu_worker_without_retries_trains_in_process():
    one = {"num_workers": 1, "use_gpu": False, "min_workers": None, "max_failures": 0}
    assert fits_in_process(one, "ray_results")
    assert not fits_in_process({**one, "num_workers": 2}, "ray_results")
    assert not fits_in_process({**one, "use_gpu": True}, "ray_results")
    assert not fits_in_process({**one, "max_failures": 2}, "ray_results")
    assert not fits_in_process(one, "s3://bucket/ray")


def test_a_runs_checkpoints_are_found_on_a_local_path_and_behind_a_uri(tmp_path):
    from orchestrator.runtime.checkpoints import run_checkpoints

    for name in ("checkpoint_2026-12-07_10-00-01", "checkpoint_2026-12-07_10-00-00", "not_a_checkpoint"):
        (tmp_path / "run1" / name).mkdir(parents=True)
    local = run_checkpoints(str(tmp_path), "run1")
    assert [p.rsplit("/", 1)[-1] for p in local] == ["checkpoint_2026-12-07_10-00-00", "checkpoint_2026-12-07_10-00-01"]
    # a URI (as paths.storage_dir=s3://... is) goes through pyarrow's filesystems, not the local disk
    assert run_checkpoints(f"file://{tmp_path}", "run1") == [f"file://{tmp_path}/run1/{p.rsplit('/', 1)[-1]}" for p in local]
    assert run_checkpoints(f"file://{tmp_path}", "no_such_run") == []


def test_the_checkpoint_file_name_is_ray_trains():
    from ray.train.lightning._lightning_utils import RayTrainReportCallback

    from orchestrator.runtime.checkpoints import CHECKPOINT_NAME

    # copied, not imported: the driver reads checkpoints without importing Lightning (which Ray's module does)
    assert CHECKPOINT_NAME == RayTrainReportCallback.CHECKPOINT_NAME
