"""Compress a model trained earlier (a run of `orchestrate train`, or a checkpoint file) under its own
pipeline-style parent run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from orchestrator.config.compression import CompressConfig
from orchestrator.errors import ConfigError
from orchestrator.tracking.source_run import fetch_source_run

# What defines the trained model: taken from the source run; the rest (where to run, track, store,
# and how to compress) comes from this command.
MODEL_DEFINING = ("data", "model", "optimizer", "scheduler", "trainer", "callbacks", "seed")


def with_source_model(cfg: DictConfig, source_config: dict[str, Any]) -> DictConfig:
    """This command's config with the source run's model-defining keys in place of its own."""
    merged = cfg.copy()
    with open_dict(merged):
        for key in MODEL_DEFINING:
            if key not in source_config:
                continue
            if OmegaConf.is_dict(merged.get(key)) and OmegaConf.get_type(merged, key) is not dict:
                merged[key] = OmegaConf.merge(merged[key], source_config[key])  # a typed node: same keys
            else:
                merged[key] = source_config[key]  # model, data: the source's whole node, not a merge
    return merged


def run_compress(cfg: DictConfig):
    """Compress the source model into variant child runs of a new parent run; returns the parent run
    id, the experiment id, the tracking URI and the CompressionOutcome."""
    from mlflow import MlflowClient

    from orchestrator.compression.checks import check_compressible
    from orchestrator.compression.run import compress_checkpoint
    from orchestrator.config.prepare import prepare_compression, resolved_config
    from orchestrator.config.schema import validate
    from orchestrator.logs import quiet_libraries
    from orchestrator.runtime.cluster import connect
    from orchestrator.runtime.launch import user_code_runtime_env
    from orchestrator.tracking.runs import open_run
    from orchestrator.tracking.store import experiment_id
    from orchestrator.tracking.tags import TAG_SOURCE_RUN
    from orchestrator.training.evaluate import load_model, load_state_dict

    typed, config, uri = prepare_compression(cfg, CompressConfig)
    quiet_libraries()
    client = MlflowClient(uri)
    source = typed.source
    with tempfile.TemporaryDirectory(prefix="orchestrator-") as tmp:
        tags = {}
        if source.run_id:
            source_config, checkpoint = fetch_source_run(client, source.run_id, Path(tmp))
            # resolved again over the source's model, so settings relative to it (the distillation
            # student's ${floordiv:${model.hidden_dim},4}) follow the model that was trained
            cfg = with_source_model(cfg, source_config)
            typed, config = validate(cfg, CompressConfig), resolved_config(cfg)
            tags[TAG_SOURCE_RUN] = source.run_id
        else:
            checkpoint = Path(source.checkpoint).expanduser().resolve()
            load_state_dict(checkpoint)  # missing / not a checkpoint: ConfigError naming source.checkpoint
        check_compressible(config, typed.compression)
        try:
            load_model(config, checkpoint)
        except RuntimeError as err:  # shapes or keys that do not match the configured model
            key = "source.run_id" if source.run_id else "source.checkpoint"
            raise ConfigError(
                key,
                f"the checkpoint does not fit the model config ({str(err).splitlines()[0]})",
                "pass the model=/model.* overrides it was trained with",
            ) from err

        connect(typed.cluster, user_code_runtime_env(config))
        exp_id = experiment_id(client, typed.tracking.experiment)
        with open_run(uri, exp_id, typed.tracking.run_name, "pipeline", config, tags) as run_id:
            outcome = compress_checkpoint(config, typed.compression, checkpoint, run_id, exp_id, uri)
    return run_id, exp_id, uri, outcome
