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


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="compress")
def main(cfg: DictConfig) -> None:
    from orchestrator.compression.from_run import run_compress
    from orchestrator.compression.report import print_compression_summary

    try:
        run_id, exp_id, uri, outcome = run_compress(cfg)
    except OrchestratorError as err:
        report_and_exit(err)
    print_compression_summary("compression finished", run_id, exp_id, uri, outcome)
