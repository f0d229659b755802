"""The training function every Ray Train worker runs: plain Lightning with Ray's adapters.

Each worker builds the DataModule and LitModule from the resolved config, trains with RayDDPStrategy
(gloo on CPU, NCCL on GPU), reports metrics and a checkpoint to Ray every epoch (Ray keeps the best and
the latest), and resumes from Ray's latest checkpoint after a worker-group restart or
`orchestrate resume` (falling back to the newest checkpoint that loads). Rank zero alone writes
metrics into the driver's MLflow run. A grid trial of one worker runs it in its own process instead
(Ray Train's local mode, orchestrator/runtime/in_process.py): plain Lightning on one device.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

from orchestrator.runtime.checkpoints import CHECKPOINT_NAME, newest_loadable
from orchestrator.tracking.tags import (
    TAG_RESUMED_FROM_EPOCH,
    TAG_RESUMED_WITH_WORKERS,
    TAG_RESUMES,
)

log = logging.getLogger(__name__)


def record_resume(tracking_uri: str, run_id: str, completed_epochs: int, num_workers: int) -> None:
    """Count the resume on the run (rank zero only) and say from which epoch it continues, on how many
    workers (fewer than asked when an elastic run lost nodes)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    resumes = int(client.get_run(run_id).data.tags.get(TAG_RESUMES, "0")) + 1
    client.set_tag(run_id, TAG_RESUMES, str(resumes))
    client.set_tag(run_id, TAG_RESUMED_FROM_EPOCH, str(completed_epochs))
    client.set_tag(run_id, TAG_RESUMED_WITH_WORKERS, str(num_workers))
    log.warning(
        "resume %d of run %s: continuing after epoch %d from its checkpoint on %d worker(s)", resumes, run_id, completed_epochs, num_workers
    )


def resume_checkpoint(loop_config: dict[str, Any]) -> str | None:
    """The checkpoint file to resume from (Ray's latest, or the newest older one that loads), or None."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    # Ray's checkpoints live on the run's storage; a local or mounted path is read in place.
    found = newest_loadable(checkpoint.path) if os.path.isdir(checkpoint.path) else None
    if found is None and not os.path.isdir(checkpoint.path):  # remote storage (s3://...): fetch the latest
        with checkpoint.as_directory() as folder:
            local = tempfile.mkdtemp(prefix="orchestrator-resume-")
            shutil.copyfile(os.path.join(folder, CHECKPOINT_NAME), os.path.join(local, CHECKPOINT_NAME))
        found = newest_loadable(local)
    if found is None:
        log.warning("no loadable checkpoint in %s: training starts from scratch", checkpoint.path)
        return None
    path, contents = found
    context = ray.train.get_context()
    if context.get_world_rank() == 0:
        record_resume(loop_config["tracking_uri"], loop_config["run_id"], int(contents.get("epoch", -1)) + 1, context.get_world_size())
    return str(path)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import lightning
    import torch
    from ray.train.lightning import (
        RayDDPStrategy,
        RayLightningEnvironment,
        RayTrainReportCallback,
        prepare_trainer,
    )
    from ray.train.v2._internal.execution import context as train_context

    from orchestrator.config.build import build_callbacks, build_datamodule, build_model
    from orchestrator.data.module import DataWait, StreamingDataModule
    from orchestrator.logs import quiet_libraries
    from orchestrator.tracking.run_logger import RunLogger
    from trainers.callbacks.epoch_summary import EpochSummary
    from trainers.callbacks.finite_loss import FiniteLossCheck

    config = loop_config["config"]
    quiet_libraries()
    logging.getLogger("trainers").setLevel(logging.INFO)  # EpochSummary's per-epoch line
    # Ray Train logs every report (metrics and checkpoint path, ~600 characters) at INFO through a logger
    # named after its file, which LoggingConfig does not reach; EpochSummary already says it in one line.
    logging.getLogger(train_context.__file__).setLevel(logging.WARNING)
    # Ray sets OMP_NUM_THREADS=1 in workers; give each worker exactly the CPUs it reserved.
    torch.set_num_threads(config["scaling"]["cpus_per_worker"])
    lightning.seed_everything(config["seed"], workers=True, verbose=False)

    datamodule = build_datamodule(config)
    model = build_model(config, datamodule)
    streamed = []
    if isinstance(datamodule, StreamingDataModule):
        # a worker group reads the shards the driver's datasets were split into; a run in process streams its own
        datamodule.from_shards = not loop_config.get("in_process_dir")
        streamed = [DataWait()]
    logger = RunLogger(tracking_uri=loop_config["tracking_uri"], run_id=loop_config["run_id"])
    if loop_config.get("in_process_dir"):  # Ray Train's local mode: one process, no DDP (in_process.py)
        from orchestrator.runtime.checkpoints import policy
        from orchestrator.runtime.in_process import CheckpointKeeper

        strategy, plugins = "auto", []
        reporter = CheckpointKeeper(loop_config["in_process_dir"], *policy(config))
    else:
        strategy, plugins, reporter = RayDDPStrategy(), [RayLightningEnvironment()], RayTrainReportCallback()
    trainer = lightning.Trainer(
        **config["trainer"],
        accelerator="gpu" if config["scaling"]["use_gpu"] else "cpu",
        devices="auto",
        strategy=strategy,
        plugins=plugins,
        callbacks=[*build_callbacks(config), *streamed, FiniteLossCheck(), EpochSummary(), reporter],
        logger=logger,
        # Ray persists a worker group's checkpoints (RayTrainReportCallback); in process, CheckpointKeeper does
        enable_checkpointing=bool(loop_config.get("in_process_dir")),
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tempfile.mkdtemp(prefix="orchestrator-"),
    )
    if not loop_config.get("in_process_dir"):
        trainer = prepare_trainer(trainer)
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_checkpoint(loop_config), weights_only=True)
