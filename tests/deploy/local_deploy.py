"""Helpers of the deploy tests: the test deployment's ports and a user's shell for the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "deploy" / "local" / "cluster"
MLFLOW_SCRIPT = REPO / "deploy" / "local" / "mlflow"
ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))
# Ports of the test deployment (the scripts' defaults, 15300.. and 15390/15391, stay free for a user's own).
CLUSTER_PORT_BASE = 15343
PG_PORT = 15392
MLFLOW_PORT = 15393
# The basic-auth MLflow server of test_mlflow_auth.py, between the session deployment and the node-loss
# clusters (15420..15692).
AUTH_PG_PORT = 15394
AUTH_MLFLOW_PORT = 15395
START_TIMEOUT_S = 420


@dataclass(frozen=True)
class LocalDeploy:
    address: str  # the Ray dashboard / Jobs API
    tracking_uri: str  # the MLflow server
    state: Path


def user_env(**extra: str) -> dict[str, str]:
    """A user's shell: no pytest or Ray/MLflow variables of this process, wide rich tables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "RAY_", "MLFLOW_")) and k != "RAY_ADDRESS"}
    env["COLUMNS"] = "400"
    env.update(extra)
    return env


def orchestrate(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([ORCHESTRATE, *args], cwd=cwd, env=env or user_env(), capture_output=True, text=True, timeout=timeout)
