"""`orchestrate compress source.run_id=ID | source.checkpoint=PATH [OVERRIDES]`: compress a model
trained earlier, under its own pipeline-style parent run.

    orchestrate compress source.run_id=<RUN_ID>                      # a run of `orchestrate train`
    orchestrate compress source.checkpoint=path/to/best.ckpt model=mlp model.hidden_dim=512
    orchestrate compress source.run_id=<RUN_ID> compression.stages=[quantize]

With source.run_id the model is rebuilt from that run's config.yaml and its checkpoints/best.ckpt (read
with weights_only=True); the parent run carries tag orchestrator.source_run_id. With source.checkpoint
the model and data come from this command's config.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import hydra
import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from orchestrator.compression.schema import CompressConfig, register_schemas as register_compression_schemas
from orchestrator.conf_dir import CONF_DIR
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.schema import register_schemas

log = logging.getLogger(__name__)

register_schemas()
register_compression_schemas()

# What defines the trained model: taken from the source run; the rest (where to run, track, store,
# and how to compress) comes from this command.
MODEL_DEFINING = ("data", "model", "optimizer", "scheduler", "trainer", "callbacks", "seed")


def fetch_source_run(client, run_id: str, folder: Path) -> tuple[dict[str, Any], Path]:
    """The source run's config.yaml (as a dict) and its checkpoints/best.ckpt, or a ConfigError."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException as err:
        raise ConfigError("source.run_id", f"no MLflow run {run_id!r} in this tracking store", "check the id and tracking.uri") from err
    try:
        config_file = Path(client.download_artifacts(run_id, "config.yaml", str(folder)))
        checkpoint = Path(client.download_artifacts(run_id, "checkpoints/best.ckpt", str(folder)))
    except (MlflowException, OSError) as err:
        raise ConfigError("source.run_id", f"run {run_id} has no config.yaml and checkpoints/best.ckpt",
                          "give a run of `orchestrate train` (or use source.checkpoint=PATH)") from err
    return yaml.safe_load(config_file.read_text()), checkpoint


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

    from orchestrator.cluster import connect
    from orchestrator.compression.parent_run import parent_run
    from orchestrator.compression.run import TAG_SOURCE_RUN, compress_checkpoint
    from orchestrator.evaluate import load_model, load_state_dict
    from orchestrator.launch import user_code_runtime_env
    from orchestrator.logs import quiet_libraries
    from orchestrator.pipeline import check_compressible, prepare_compression
    from orchestrator.schema import validate
    from orchestrator.train import resolved_config
    from orchestrator.tracking import experiment_id, flatten, mask_secrets, run_tags

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
            raise ConfigError(key, f"the checkpoint does not fit the model config ({str(err).splitlines()[0]})",
                              "pass the model=/model.* overrides it was trained with") from err

        connect(typed.cluster, user_code_runtime_env(config))
        exp_id = experiment_id(client, typed.tracking.experiment)
        public = mask_secrets(config)
        with parent_run(uri, exp_id, typed.tracking.run_name, run_tags("pipeline", config, tags), flatten(public),
                        OmegaConf.to_yaml(public)) as run_id:
            outcome = compress_checkpoint(config, typed.compression, checkpoint, run_id, exp_id, uri)
    return run_id, exp_id, uri, outcome


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="compress")
def main(cfg: DictConfig) -> None:
    from orchestrator.console import print_run_summary
    from orchestrator.train import report_and_exit

    try:
        run_id, exp_id, uri, outcome = run_compress(cfg)
    except OrchestratorError as err:
        report_and_exit(err)
        return
    decision = outcome.decision
    where = {"champion": f"{decision.champion.name} ({decision.reason})" if decision.champion else decision.reason}
    if outcome.failed:
        where["failed variants"] = ", ".join(r.name for r in outcome.failed)
    champion = decision.champion.metrics if decision.champion else {}
    print_run_summary("compression finished", run_id, exp_id, uri,
                      {k: champion[k] for k in (outcome.quality.metric, outcome.quality.change) if k in champion}, where)
