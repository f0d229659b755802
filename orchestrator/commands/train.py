"""`orchestrate train [OVERRIDES]`: one training run on Ray, tracked in one MLflow run.

orchestrate train data=digits model=mlp trainer.max_epochs=10 scaling.num_workers=2
orchestrate train model=cnn optimizer=sgd optimizer.lr=0.05 scheduler=cosine
orchestrate train data=csv data.path=my.csv data.label_column=label
orchestrate train model._target_=mypkg.MyLitModule data._target_=mypkg.MyDataModule
orchestrate train --cfg job            # print the composed config and exit
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig

from orchestrator.config.conf_dir import CONF_DIR
from orchestrator.config.schema import register_schemas
from orchestrator.errors import OrchestratorError, report_and_exit

register_schemas()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from orchestrator.console import print_run_summary
    from orchestrator.runtime.trials import PARENT_RUN_ENV
    from orchestrator.training.run import run_train

    # In a sweep (-m) the launcher runs this per trial, sets the sweep run as parent, and reports
    # failed trials itself: an error must fail this trial only, never exit the sweep.
    trial = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        outcome = run_train(cfg, parent_run_id=os.environ.get(PARENT_RUN_ENV) if trial else None)
    except OrchestratorError as err:
        if trial:
            raise
        report_and_exit(err)
    if trial:
        return outcome
    print_run_summary(
        "training run finished",
        outcome.run_id,
        outcome.experiment_id,
        outcome.tracking_uri,
        outcome.metrics,
        {
            **({"early stopping": outcome.stop_reason} if outcome.stop_reason else {}),
            "best checkpoint": outcome.best_checkpoint or "-",
            "Ray storage": outcome.storage_path or "-",
        },
    )
