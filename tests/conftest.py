"""Shared fixtures: the composed config, one real local Ray cluster per session, a SQLite MLflow store."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from compose import compose_config
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def compose_train(tmp_path):
    def _compose(*overrides: str) -> DictConfig:
        return compose_config("train", list(overrides), tmp_path)

    return _compose


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite MLflow store for one test, used through MLFLOW_TRACKING_URI as a user would."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is relative to the working directory
    return uri


@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray cluster (2 CPUs) shared by the whole session: Ray's start-up is seconds."""
    import ray

    from orchestrator.config.schema import ClusterConfig
    from orchestrator.runtime.cluster import connect

    connect(ClusterConfig(num_cpus=2))
    yield ray
    ray.shutdown()


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    """The environment of a user's shell, with MLflow pointed at a store in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "RAY_ADDRESS"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlruns.db'}"
    return env


@pytest.fixture
def pipe_console(monkeypatch) -> io.StringIO:
    """The package's console writing to a pipe, 80 columns wide (what `orchestrate ... | grep` reads):
    returns what it printed."""
    from rich.console import Console

    import orchestrator.console

    printed = io.StringIO()
    monkeypatch.setattr(orchestrator.console, "console", Console(file=printed, width=80, highlight=False))
    return printed
