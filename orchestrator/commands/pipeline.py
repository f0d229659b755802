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

import hydra
from omegaconf import DictConfig

from orchestrator.config.compression import (
    register_schemas as register_compression_schemas,
)
from orchestrator.config.conf_dir import CONF_DIR
from orchestrator.config.schema import register_schemas
from orchestrator.errors import OrchestratorError, report_and_exit

register_schemas()
register_compression_schemas()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="pipeline")
def main(cfg: DictConfig) -> None:
    from orchestrator.compression.pipeline import run_pipeline
    from orchestrator.compression.report import print_compression_summary

    try:
        outcome = run_pipeline(cfg)
    except OrchestratorError as err:
        report_and_exit(err)
    print_compression_summary(
        "pipeline finished",
        outcome.run_id,
        outcome.experiment_id,
        outcome.tracking_uri,
        outcome.compression,
        {"training run": outcome.train_run_id},
    )
