"""`orchestrate pipeline [OVERRIDES]`: train -> compress -> evaluate -> gate -> register, the main job.

    orchestrate pipeline                                  # digits, MLP (hidden 512), every stage
    orchestrate pipeline model=cnn compression.max_acc_drop=0.005
    orchestrate pipeline compression.stages=[quantize] compression.prune.sparsities=[0.9]
    orchestrate pipeline data=text_csv data.path=reviews.csv model=pretrained_encoder model.path=<HF folder>
    orchestrate pipeline data=text_file data.path=corpus.txt model=causal_lm compression.max_ppl_increase=0.1
    orchestrate pipeline --cfg job                        # print the composed config and exit

One MLflow parent run (orchestrator.kind=pipeline) holds the training run and one child run per
variant (orchestrator.kind=compress, orchestrator.stage, orchestrator.variant), plus plots/pareto.png
and summary/variants.json. Classifiers are gated on accuracy (acc_drop), language models on perplexity
(ppl_increase). The smallest variant that passes the gate gets alias `champion` in the
Model Registry; when none does, the baseline gets it and the summary says why.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from orchestrator.compression.schema import PipelineConfig, register_schemas as register_compression_schemas
from orchestrator.conf_dir import CONF_DIR
from orchestrator.errors import OrchestratorError
from orchestrator.schema import TrainConfig, register_schemas

log = logging.getLogger(__name__)

register_schemas()
register_compression_schemas()


@dataclass
class PipelineOutcome:
    """What one pipeline left behind."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    train_run_id: str
    compression: Any  # orchestrator.compression.run.CompressionOutcome


def check_compressible(config: dict[str, Any], compression) -> None:
    """Build the DataModule, LitModule and callbacks once, and check what the chosen stages need."""
    from orchestrator.build import check_buildable
    from orchestrator.compression.distill import check_distillable
    from orchestrator.compression.prune import check_channel_layers
    from orchestrator.compression.stages import DISTILLATION, STRUCTURED_PRUNING, skipped_methods

    datamodule, model = check_buildable(config)
    skipped = skipped_methods(compression, model)  # said when the stages run
    if "prune" in compression.stages and compression.prune.channel_ratios and STRUCTURED_PRUNING not in skipped:
        check_channel_layers(model, compression.prune.channel_layers)
    if "distill" in compression.stages and DISTILLATION not in skipped:
        check_distillable(config, compression.distill, datamodule, model)


def prepare_compression(cfg: DictConfig, schema: type):
    """Schema (with compression.*) and tracking store, checked before Ray starts.
    Returns (typed config, plain resolved config, tracking URI)."""
    from orchestrator.schema import validate
    from orchestrator.tracking import check_reachable, resolve_uri
    from orchestrator.train import check_embedded_fits, resolved_config

    typed = validate(cfg, schema)
    config = resolved_config(cfg)
    uri = resolve_uri(typed.tracking.uri)
    check_reachable(uri, typed.tracking.timeout_s)
    check_embedded_fits(typed)
    return typed, config, uri


def training_part(config: dict[str, Any]) -> dict[str, Any]:
    """The keys of the config that `orchestrate train` knows."""
    return {k: v for k, v in config.items() if k in TrainConfig.__dataclass_fields__}


def run_pipeline(cfg: DictConfig) -> PipelineOutcome:
    """Train on Ray under a pipeline run, then compress the best checkpoint into variant child runs."""
    from mlflow import MlflowClient

    from orchestrator.cluster import connect
    from orchestrator.compression.parent_run import parent_run
    from orchestrator.compression.run import compress_checkpoint
    from orchestrator.launch import user_code_runtime_env
    from orchestrator.logs import quiet_libraries
    from orchestrator.tracking import experiment_id, flatten, mask_secrets, run_tags
    from orchestrator.schema import validate
    from orchestrator.train import train_prepared

    typed, config, uri = prepare_compression(cfg, PipelineConfig)
    quiet_libraries()
    check_compressible(config, typed.compression)
    connect(typed.cluster, user_code_runtime_env(config))
    client = MlflowClient(uri)
    exp_id = experiment_id(client, typed.tracking.experiment)
    public = mask_secrets(config)
    with parent_run(uri, exp_id, typed.tracking.run_name, run_tags("pipeline", config), flatten(public),
                    OmegaConf.to_yaml(public)) as run_id:
        # check_compressible built the data and model once already: no second build for the training run
        training = training_part(config)
        trained = train_prepared(validate(OmegaConf.create(training)), training, uri, parent_run_id=run_id)
        with tempfile.TemporaryDirectory(prefix="orchestrator-") as tmp:
            checkpoint = Path(client.download_artifacts(trained.run_id, "checkpoints/best.ckpt", tmp))
            outcome = compress_checkpoint(config, typed.compression, checkpoint, run_id, exp_id, uri)
    return PipelineOutcome(run_id, exp_id, uri, trained.run_id, outcome)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="pipeline")
def main(cfg: DictConfig) -> None:
    from orchestrator.console import print_run_summary
    from orchestrator.train import report_and_exit

    try:
        outcome = run_pipeline(cfg)
    except OrchestratorError as err:
        report_and_exit(err)
        return
    decision = outcome.compression.decision
    where = {"training run": outcome.train_run_id,
             "champion": f"{decision.champion.name} ({decision.reason})" if decision.champion else decision.reason}
    if outcome.compression.failed:
        where["failed variants"] = ", ".join(r.name for r in outcome.compression.failed)
    champion = decision.champion.metrics if decision.champion else {}
    quality = outcome.compression.quality
    print_run_summary("pipeline finished", outcome.run_id, outcome.experiment_id, outcome.tracking_uri,
                      {k: champion[k] for k in (quality.metric, quality.change) if k in champion}, where)
