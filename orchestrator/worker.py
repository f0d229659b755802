"""The training function every Ray Train worker runs: plain Lightning with Ray's adapters.

Each worker builds the DataModule and LitModule from the resolved config, trains with RayDDPStrategy
(gloo on CPU, NCCL on GPU), reports metrics and a checkpoint to Ray every epoch (Ray keeps the best and
the latest), and resumes from Ray's checkpoint after a worker-group restart. Rank zero alone writes
metrics into the driver's MLflow run.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

CHECKPOINT_NAME = "checkpoint.ckpt"  # the file RayTrainReportCallback writes in each Ray checkpoint


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import lightning
    import ray.train
    import torch
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback, prepare_trainer

    from orchestrator.build import build_callbacks, build_datamodule, build_model
    from orchestrator.logs import quiet_libraries
    from orchestrator.run_logger import RunLogger
    from trainers.callbacks.epoch_summary import EpochSummary

    config = loop_config["config"]
    quiet_libraries()
    logging.getLogger("trainers").setLevel(logging.INFO)  # EpochSummary's per-epoch line
    # Ray sets OMP_NUM_THREADS=1 in workers; give each worker exactly the CPUs it reserved.
    torch.set_num_threads(config["scaling"]["cpus_per_worker"])
    lightning.seed_everything(config["seed"], workers=True, verbose=False)

    datamodule = build_datamodule(config)
    model = build_model(config, datamodule)
    logger = RunLogger(tracking_uri=loop_config["tracking_uri"], run_id=loop_config["run_id"])
    trainer = lightning.Trainer(
        **config["trainer"],
        accelerator="gpu" if config["scaling"]["use_gpu"] else "cpu",
        devices="auto",
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        callbacks=[*build_callbacks(config), EpochSummary(), RayTrainReportCallback()],
        logger=logger,
        enable_checkpointing=False,  # Ray persists the checkpoints (RayTrainReportCallback)
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tempfile.mkdtemp(prefix="orchestrator-"),
    )
    trainer = prepare_trainer(trainer)

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        trainer.fit(model, datamodule=datamodule)
        return
    with checkpoint.as_directory() as folder:
        trainer.fit(model, datamodule=datamodule, ckpt_path=os.path.join(folder, CHECKPOINT_NAME))
