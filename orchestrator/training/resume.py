"""Continue an interrupted or failed training run from its last good checkpoint, into the same MLflow
run (never a new one)."""

from __future__ import annotations

import yaml

from orchestrator.errors import ConfigError


def load_run(run_id: str, uri: str):
    """The run and its resolved config (config.yaml artifact), or a ConfigError naming RUN_ID."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        raise ConfigError(
            "RUN_ID", f"no run {run_id!r} in the tracking store {uri}", "check the id with the MLflow UI or orchestrate compare"
        ) from err
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

    from orchestrator.config.schema import validate
    from orchestrator.logs import quiet_libraries
    from orchestrator.runtime.checkpoints import newest_loadable, run_checkpoints
    from orchestrator.tracking.store import check_reachable, resolve_uri
    from orchestrator.training.run import connect_for, train_in_run

    uri = resolve_uri(tracking_uri)
    check_reachable(uri)
    run, config = load_run(run_id, uri)
    quiet_libraries()
    if run.info.status == "FINISHED":
        raise ConfigError("RUN_ID", f"run {run_id} already FINISHED; nothing to resume")
    if run.data.tags.get("orchestrator.kind") != "train":
        raise ConfigError("RUN_ID", f"run {run_id} is a {run.data.tags.get('orchestrator.kind')!r} run; resume takes a training run")
    typed = validate(OmegaConf.create(config))
    storage_dir = config["paths"]["storage_dir"]
    latest = run_checkpoints(storage_dir, run_id)
    # A local checkpoint is read here first; one on object storage is read by Ray when the run resumes.
    if not latest or ("://" not in storage_dir and newest_loadable(latest[-1]) is None):
        raise ConfigError(
            "RUN_ID", f"run {run_id} has no loadable checkpoint under {storage_dir}/{run_id}", "start a new run with orchestrate train"
        )
    connect_for(typed, config)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id):
        return train_in_run(config, run_id, run.info.experiment_id, uri, typed.tracking.log_model)
