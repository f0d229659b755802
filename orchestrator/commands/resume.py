"""`orchestrate resume RUN_ID`: continue an interrupted or failed run from its last good checkpoint,
into the same MLflow run (never a new one).

    orchestrate resume 3f2a9c...            # tracking store from $MLFLOW_TRACKING_URI or ./mlruns.db
    orchestrate resume 3f2a9c... --tracking-uri http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import logging
import sys

from orchestrator.errors import OrchestratorError
from orchestrator.training.resume import run_resume


def main(argv: list[str] | None = None) -> None:
    from orchestrator.console import print_run_summary
    from orchestrator.errors import RunInterrupted, report_and_exit

    parser = argparse.ArgumentParser(prog="orchestrate resume", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", metavar="RUN_ID", help="the MLflow run id of an interrupted or failed training run")
    parser.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        outcome = run_resume(args.run_id, args.tracking_uri)
    except (OrchestratorError, KeyboardInterrupt) as err:
        report_and_exit(err if str(err) else RunInterrupted("interrupted"))
    print_run_summary(
        "training run resumed and finished",
        outcome.run_id,
        outcome.experiment_id,
        outcome.tracking_uri,
        outcome.metrics,
        {"best checkpoint": outcome.best_checkpoint or "-"},
    )
