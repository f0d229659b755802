"""One real local deployment per test session: deploy/local/cluster (a Ray head + 1 worker node, 1 CPU
each, separate processes) and deploy/local/mlflow (an MLflow server on a private PostgreSQL), started
concurrently once and stopped by their own scripts. Tests talk to them over HTTP and through the CLI in
subprocesses, never with ray.init in the pytest process (which may hold the session's embedded Ray)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from local_deploy import (
    CLUSTER_PORT_BASE,
    CLUSTER_SCRIPT,
    MLFLOW_PORT,
    MLFLOW_SCRIPT,
    PG_PORT,
    START_TIMEOUT_S,
    LocalDeploy,
    user_env,
)


@pytest.fixture(scope="session")
def local_deploy():
    if not shutil.which("runuser") or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run installs it)")
    # PostgreSQL runs as the `postgres` user when we are root: its folder must not sit under a 0700 tmp_path.
    state = Path(tempfile.mkdtemp(prefix="orch-deploy-", dir="/tmp"))
    state.chmod(0o755)
    # Ray gives each node a fixed 30 s to register; a loaded CI machine can miss it (the script retries).
    env = user_env(START_TIMEOUT_S=str(START_TIMEOUT_S), START_RETRIES="5")
    cluster_cmd = [str(CLUSTER_SCRIPT), "--state-dir", str(state / "cluster")]
    mlflow_cmd = [str(MLFLOW_SCRIPT), "--state-dir", str(state / "mlflow")]
    try:
        starts = [
            subprocess.Popen(
                [cluster_cmd[0], "up", "--workers", "1", "--cpus-per-node", "1", "--port-base", str(CLUSTER_PORT_BASE), *cluster_cmd[1:]],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
            subprocess.Popen(
                [mlflow_cmd[0], "up", "--port", str(MLFLOW_PORT), "--pg-port", str(PG_PORT), *mlflow_cmd[1:]],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        ]
        outputs = [process.communicate(timeout=START_TIMEOUT_S + 60)[0] for process in starts]
        for process, output in zip(starts, outputs, strict=False):
            assert process.returncode == 0, output
        yield LocalDeploy(f"http://127.0.0.1:{CLUSTER_PORT_BASE + 1}", f"http://127.0.0.1:{MLFLOW_PORT}", state)
    finally:
        subprocess.run([cluster_cmd[0], "down", *cluster_cmd[1:]], env=env, capture_output=True, timeout=120)
        subprocess.run([mlflow_cmd[0], "down", *mlflow_cmd[1:]], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)
