"""deploy/local/mlflow --basic-auth against a real server (MLflow's basic-auth app on the script's own
PostgreSQL): the admin password given is the only way in, it is kept in owner-only files, a client that
sources the env file can track, and MLflow's well-known default admin password is refused before anything
starts. One server for the module; the tracking client runs in a subprocess, as a user would run it."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from local_deploy import (
    AUTH_MLFLOW_PORT,
    AUTH_PG_PORT,
    MLFLOW_SCRIPT,
    START_TIMEOUT_S,
    user_env,
)

pytestmark = pytest.mark.e2e
URL = f"http://127.0.0.1:{AUTH_MLFLOW_PORT}"
SEARCH = f"{URL}/api/2.0/mlflow/experiments/search?max_results=1"
# The admin password older MLflow releases shipped in basic_auth.ini, still in tutorials: anyone can guess it.
DEFAULT_ADMIN_PASSWORD = "password1234"
# Run with the env of `source $STATE_DIR/env`: creates an experiment and a FINISHED run with one param.
CLIENT = """
import uuid
from mlflow import MlflowClient

client = MlflowClient()
experiment_id = client.create_experiment(f"auth-{uuid.uuid4().hex}")
run = client.create_run(experiment_id)
client.log_param(run.info.run_id, "lr", "0.1")
client.set_terminated(run.info.run_id, "FINISHED")
print(run.info.run_id)
"""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def mlflow_script(*args: str, state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MLFLOW_SCRIPT), *args, "--state-dir", str(state)],
        env=user_env(START_TIMEOUT_S=str(START_TIMEOUT_S)),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S + 60,
    )


def state_dir() -> Path:
    # PostgreSQL runs as the `postgres` user when we are root: its folder must not sit under a 0700 tmp_path.
    state = Path(tempfile.mkdtemp(prefix="orch-mlflow-auth-", dir="/tmp"))
    state.chmod(0o755)
    return state


@pytest.fixture(scope="module")
def auth_server():
    """`up --basic-auth` with a random admin password: (state dir, password, the `up` process)."""
    state, password = state_dir(), secrets.token_urlsafe(18)
    try:
        up = mlflow_script(
            "up", "--basic-auth", "--admin-password", password, "--port", str(AUTH_MLFLOW_PORT), "--pg-port", str(AUTH_PG_PORT), state=state
        )
        yield state, password, up
    finally:
        mlflow_script("down", state=state)
        shutil.rmtree(state, ignore_errors=True)


def test_default_admin_password_is_refused_before_anything_starts():
    # First in the module, before auth_server takes the same ports: they must be free for this to mean anything.
    assert not listening(AUTH_MLFLOW_PORT) and not listening(AUTH_PG_PORT)
    state = state_dir()
    try:
        up = mlflow_script(
            "up",
            "--basic-auth",
            "--admin-password",
            DEFAULT_ADMIN_PASSWORD,
            "--port",
            str(AUTH_MLFLOW_PORT),
            "--pg-port",
            str(AUTH_PG_PORT),
            state=state,
        )
        assert up.returncode != 0
        assert "--admin-password" in up.stderr and "non-default" in up.stderr, up.stderr
        assert not listening(AUTH_MLFLOW_PORT) and not listening(AUTH_PG_PORT)
        assert not (state / "pgdata").exists() and not (state / "admin_password").exists()
    finally:
        mlflow_script("down", state=state)
        shutil.rmtree(state, ignore_errors=True)


def test_up_keeps_the_admin_password_in_owner_only_files(auth_server):
    state, password, up = auth_server
    assert up.returncode == 0, up.stdout + up.stderr
    assert (state / "admin_password").read_text().strip() == password
    assert (state / "admin_password").stat().st_mode & 0o777 == 0o600
    env_file = (state / "env").read_text().splitlines()
    assert "export MLFLOW_TRACKING_USERNAME=admin" in env_file
    assert f"export MLFLOW_TRACKING_PASSWORD={password}" in env_file
    assert f"export MLFLOW_TRACKING_URI={URL}" in env_file
    assert (state / "env").stat().st_mode & 0o777 == 0o600


def test_rest_api_needs_the_admin_password(auth_server):
    state, password, up = auth_server
    assert up.returncode == 0, up.stdout + up.stderr
    assert requests.get(SEARCH, timeout=30).status_code == 401
    assert requests.get(SEARCH, auth=("admin", DEFAULT_ADMIN_PASSWORD), timeout=30).status_code == 401
    assert requests.get(SEARCH, auth=("admin", password + "x"), timeout=30).status_code == 401
    answer = requests.get(SEARCH, auth=("admin", password), timeout=30)
    assert answer.status_code == 200, answer.text
    assert "experiments" in answer.json()


def test_client_with_the_env_file_tracks(auth_server):
    state, password, up = auth_server
    assert up.returncode == 0, up.stdout + up.stderr
    # As the script tells users: `source $STATE_DIR/env`, then any MLflow client.
    client = subprocess.run(
        ["bash", "-c", f'source "{state / "env"}" && exec "{sys.executable}" -'],
        input=CLIENT,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert client.returncode == 0, client.stdout + client.stderr
    run_id = client.stdout.split()[-1]
    answer = requests.get(f"{URL}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, auth=("admin", password), timeout=30)
    assert answer.status_code == 200, answer.text
    run = answer.json()["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {"key": "lr", "value": "0.1"} in run["data"]["params"]
