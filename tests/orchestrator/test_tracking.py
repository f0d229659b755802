"""Pure helpers of the MLflow run contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.tracking.store import (
    MASK,
    config_hash,
    flatten,
    mask_secrets,
    resolve_uri,
)


def test_relative_sqlite_uri_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri(None, tmp_path) == f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert resolve_uri("sqlite:///x/y.db", tmp_path) == f"sqlite:///{tmp_path / 'x/y.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_uri(None, tmp_path) == "http://127.0.0.1:5000"


def test_plain_paths_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match="tracking.uri.*sqlite:///"):
        resolve_uri("./mlruns", Path("/tmp"))


def test_flatten_uses_dotted_keys():
    assert flatten({"model": {"hidden_dim": 64}, "scheduler": None, "x": {"y": [1, 2]}}) == {
        "model.hidden_dim": "64",
        "scheduler": "None",
        "x.y": "[1, 2]",
    }


def test_secrets_are_masked():
    config = {
        "tracking": {"uri": "http://alice:hunter2@host:5000"},
        "cluster": {"runtime_env": {"env_vars": {"AWS_SECRET_ACCESS_KEY": "abc", "HF_TOKEN": "t", "DB_PASSWORD": "p", "LEVEL": "3"}}},
        "optimizer": {"lr": 0.1},
        "data": {"label_column": "label"},
    }
    masked = mask_secrets(config)
    env = masked["cluster"]["runtime_env"]["env_vars"]
    assert env == {"AWS_SECRET_ACCESS_KEY": MASK, "HF_TOKEN": MASK, "DB_PASSWORD": MASK, "LEVEL": "3"}
    assert masked["tracking"]["uri"] == f"http://alice:{MASK}@host:5000"
    assert masked["optimizer"] == {"lr": 0.1} and masked["data"] == {"label_column": "label"}


def test_config_hash_ignores_where_it_runs_but_not_what_is_trained():
    base = {"model": {"hidden_dim": 64}, "tracking": {"uri": "a"}, "paths": {"storage_dir": "x"}}
    moved = {**base, "tracking": {"uri": "b"}, "paths": {"storage_dir": "y"}}
    changed = {**base, "model": {"hidden_dim": 32}}
    assert config_hash(base) == config_hash(moved)
    assert config_hash(base) != config_hash(changed)


def test_every_run_is_opened_with_the_same_params_tags_and_config(tmp_path):
    from mlflow import MlflowClient

    from orchestrator.tracking.runs import MAX_PARAM_LENGTH, open_run, run_params
    from orchestrator.tracking.tags import TAG_KIND, TAG_OUTPUT_DIR

    config = {
        "model": {"hidden_dim": 64, "notes": "x" * 7000},
        "tracking": {"uri": "http://u:pw@host:5000"},
        "paths": {"output_dir": str(tmp_path / "outputs" / "run1"), "storage_dir": "ray_results"},
        "data": {"api_key": "s3cr3t"},
    }
    params = run_params(config)
    assert "paths.output_dir" not in params and params["paths.storage_dir"] == "ray_results"  # per run: a tag
    assert params["data.api_key"] == "*****" and "pw" not in params["tracking.uri"]
    assert len(params["model.notes"]) == MAX_PARAM_LENGTH

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e")
    with open_run(uri, experiment, None, "pipeline", config) as run_id:
        pass
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params == params
    assert run.data.tags[TAG_KIND] == "pipeline" and run.data.tags[TAG_OUTPUT_DIR] == config["paths"]["output_dir"]
    assert (
        "s3cr3t" not in client.download_artifacts(run_id, "config.yaml", str(tmp_path))
        and "s3cr3t" not in (tmp_path / "config.yaml").read_text()
    )
    with pytest.raises(ValueError), open_run(uri, experiment, None, "pipeline", config) as failing:
        raise ValueError("boom")
    assert client.get_run(failing).info.status == "FAILED"
