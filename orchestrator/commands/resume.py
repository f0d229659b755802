"""`orchestrate resume RUN_ID`: continue an interrupted or failed run from its last good checkpoint,
into the same MLflow run (never a new one).

    orchestrate resume 3f2a9c...            # tracking store from $MLFLOW_TRACKING_URI or ./mlruns.db
    orchestrate resume 3f2a9c... --tracking-uri http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import logging
import sys

import yaml

from orchestrator.errors import ConfigError, OrchestratorError

log = logging.getLogger(__name__)


def load_run(run_id: str, uri: str):
    """The run and its resolved config (config.yaml artifact), or a ConfigError naming RUN_ID."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        raise ConfigError("RUN_ID", f"no run {run_id!r} in the tracking store {uri}", "check the id with the MLflow UI or orchestrate compare") from err
    try:
        text = client.download_artifacts(run_id, "config.yaml")
    except (MlflowException, OSError) as err:
        raise ConfigError("RUN_ID", f"run {run_id} has no config.yaml artifact: it was not made by orchestrate train") from err
    with open(text) as file:
        return run, yaml.safe_load(file)


def run_resume(run_id: str, tracking_uri: str | None = None):
    """Check the run and its checkpoints, rejoin Ray, and train on inside the same MLflow run."""
    import mlflow
    from omegaconf import OmegaConf

    from orchestrator.checkpoints import newest_loadable, run_storage_dir
    from orchestrator.logs import quiet_libraries
    from orchestrator.schema import validate
    from orchestrator.tracking import check_reachable, resolve_uri
    from orchestrator.train import connect_for, train_in_run

    uri = resolve_uri(tracking_uri)
    check_reachable(uri)
    run, config = load_run(run_id, uri)
    quiet_libraries()
    if run.info.status == "FINISHED":
        raise ConfigError("RUN_ID", f"run {run_id} already FINISHED; nothing to resume")
    if run.data.tags.get("orchestrator.kind") != "train":
        raise ConfigError("RUN_ID", f"run {run_id} is a {run.data.tags.get('orchestrator.kind')!r} run; resume takes a training run")
    typed = validate(OmegaConf.create(config))
    storage = run_storage_dir(config["paths"]["storage_dir"], run_id)
    latest = sorted(storage.glob("checkpoint_*"))
    if not latest or newest_loadable(latest[-1]) is None:
        raise ConfigError("RUN_ID", f"run {run_id} has no loadable checkpoint under {storage}", "start a new run with orchestrate train")
    connect_for(typed, config)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id):
        return train_in_run(config, run_id, run.info.experiment_id, uri, typed.tracking.log_model)


def main(argv: list[str] | None = None) -> None:
    from orchestrator.console import print_error, print_run_summary
    from orchestrator.train import report_and_exit

    parser = argparse.ArgumentParser(prog="orchestrate resume", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", metavar="RUN_ID", help="the MLflow run id of an interrupted or failed training run")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        outcome = run_resume(args.run_id, args.tracking_uri)
    except OrchestratorError as err:
        report_and_exit(err)
        return
    except KeyboardInterrupt:
        print_error("interrupted")
        sys.exit(130)
    print_run_summary("training run resumed and finished", outcome.run_id, outcome.experiment_id, outcome.tracking_uri,
                      outcome.metrics, {"best checkpoint": outcome.best_checkpoint or "-"})
