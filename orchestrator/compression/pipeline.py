"""The pipeline: train on Ray under a pipeline run, then compress the best checkpoint into variant
child runs (train -> compress -> evaluate -> gate -> register)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from orchestrator.compression.checks import check_compressible
from orchestrator.config.compression import PipelineConfig
from orchestrator.config.prepare import prepare_compression, training_part


@dataclass
class PipelineOutcome:
    """What one pipeline left behind."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    train_run_id: str
    compression: Any  # orchestrator.compression.run.CompressionOutcome


def run_pipeline(cfg: DictConfig) -> PipelineOutcome:
    """Train on Ray under a pipeline run, then compress the best checkpoint into variant child runs."""
    from mlflow import MlflowClient

    from orchestrator.compression.run import compress_checkpoint
    from orchestrator.config.schema import validate
    from orchestrator.logs import quiet_libraries
    from orchestrator.runtime.cluster import connect
    from orchestrator.runtime.launch import user_code_runtime_env
    from orchestrator.tracking.runs import open_run
    from orchestrator.tracking.store import experiment_id
    from orchestrator.training.run import train_prepared

    typed, config, uri = prepare_compression(cfg, PipelineConfig)
    quiet_libraries()
    check_compressible(config, typed.compression)
    connect(typed.cluster, user_code_runtime_env(config))
    client = MlflowClient(uri)
    exp_id = experiment_id(client, typed.tracking.experiment)
    with open_run(uri, exp_id, typed.tracking.run_name, "pipeline", config) as run_id:
        # check_compressible built the data and model once already: no second build for the training run
        training = training_part(config)
        trained = train_prepared(validate(OmegaConf.create(training)), training, uri, parent_run_id=run_id)
        with tempfile.TemporaryDirectory(prefix="orchestrator-") as tmp:
            checkpoint = Path(client.download_artifacts(trained.run_id, "checkpoints/best.ckpt", tmp))
            outcome = compress_checkpoint(config, typed.compression, checkpoint, run_id, exp_id, uri)
    return PipelineOutcome(run_id, exp_id, uri, trained.run_id, outcome)
