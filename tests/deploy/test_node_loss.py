"""Node loss on a real multi-node cluster: deploy/local/cluster with a head that runs no training and two
1-CPU worker nodes, one Ray Train worker on each. A worker node is SIGKILLed (every process of it) mid-run:
an elastic run (scaling.min_workers=1) goes on from its last checkpoint on the node that is left, in the
same MLflow run; a fixed-size run cannot fit any more and fails in bounded time with a clear message."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from local_deploy import CLUSTER_SCRIPT, START_TIMEOUT_S, user_env
from mlflow import MlflowClient
from runs import ORCHESTRATE, SLOW_RUN, only_run, wait_for_epochs

# One cluster per test, each on its own ports (a stopped cluster's last processes take a few seconds
# to let go of theirs), clear of the session deployment (15343.., 15392, 15393).
PORT_BASES = iter(range(15420, 15700, 70))
# Ray's knob for how long a worker group may take to start (default 60 s), shortened so that each
# attempt to start on a cluster that lost a node gives up sooner; the controller reads the driver's.
START_TIMEOUT = {"RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "20"}


@dataclass(frozen=True)
class Cluster:
    state: Path
    port_base: int


@pytest.fixture
def two_node_cluster():
    """Head (0 CPUs) + 2 worker nodes (1 CPU each), started by the deploy script and stopped by it."""
    state = Path(tempfile.mkdtemp(prefix="orch-nodeloss-", dir="/tmp"))
    port_base = next(PORT_BASES)
    # The GCS declares a silent node dead after 3 missed 1 s health checks (Ray's default: 5 of 3 s);
    # `down` gives each node 5 s to stop before it kills the node's processes (a throwaway cluster).
    env = user_env(
        START_TIMEOUT_S=str(START_TIMEOUT_S),
        START_RETRIES="5",
        STOP_TIMEOUT_S="5",
        RAY_health_check_period_ms="1000",
        RAY_health_check_failure_threshold="3",
    )
    try:
        up = subprocess.run(
            [
                str(CLUSTER_SCRIPT),
                "up",
                "--workers",
                "2",
                "--cpus-per-node",
                "1",
                "--head-cpus",
                "0",
                "--port-base",
                str(port_base),
                "--state-dir",
                str(state),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 60,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        yield Cluster(state, port_base)
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "down", "--state-dir", str(state)], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def node_running(state: Path, name: str, what: str) -> bool:
    """Whether node `name` (head, worker-1, ...) runs a process whose title contains `what`."""
    node = psutil.Process(int((state / f"{name}.pid").read_text()))
    return any(what in " ".join(p.cmdline()) for p in node.children(recursive=True) if p.is_running())


def kill_a_training_node(state: Path) -> str:
    """SIGKILL every process of a worker node that runs a Ray Train worker but not the run's controller
    (the controller lives on the driver's node); returns the node's name."""
    for name in ("worker-1", "worker-2"):
        if node_running(state, name, "RayTrainWorker") and not node_running(state, name, "TrainController"):
            os.killpg(int((state / f"{name}.pid").read_text()), signal.SIGKILL)
            return name
    raise AssertionError("no worker node runs a Ray Train worker without the controller")


def train_on_cluster(cluster: Cluster, tmp_path: Path, *overrides: str) -> subprocess.Popen:
    env = user_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlruns.db'}", RAY_AUTH_MODE="token", **START_TIMEOUT)
    return subprocess.Popen(
        [
            ORCHESTRATE,
            "train",
            *SLOW_RUN,
            f"cluster.address=127.0.0.1:{cluster.port_base}",
            "scaling.num_workers=2",
            "scaling.cpus_per_worker=1",
            f"paths.storage_dir={tmp_path / 'ray'}",
            *overrides,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.e2e
def test_elastic_run_goes_on_after_a_node_is_lost(two_node_cluster, tmp_path):
    epochs = 5
    process = train_on_cluster(
        two_node_cluster, tmp_path, f"trainer.max_epochs={epochs}", "scaling.min_workers=1", "scaling.max_failures=1"
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    try:
        run_id = wait_for_epochs(client, 1, process)
        kill_a_training_node(two_node_cluster.state)
        output, _ = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, output[-4000:]
    run = only_run(client)  # the same run goes on: no second run
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert int(run.data.tags["orchestrator.resumes"]) == 1
    assert run.data.tags["orchestrator.resumed_with_workers"] == "1"  # on the one node that is left
    resumed_from = int(run.data.tags["orchestrator.resumed_from_epoch"])
    steps = [m.step for m in client.get_metric_history(run_id, "val/acc")]
    assert len(steps) >= epochs and steps == sorted(steps)  # the lost epoch trained again, steps go on
    assert 0 <= resumed_from < epochs and "test/acc" in run.data.metrics


@pytest.mark.e2e
def test_fixed_size_run_fails_in_bounded_time_after_a_node_is_lost(two_node_cluster, tmp_path):
    process = train_on_cluster(two_node_cluster, tmp_path, "trainer.max_epochs=50", "scaling.max_failures=1")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    try:
        run_id = wait_for_epochs(client, 1, process)
        kill_a_training_node(two_node_cluster.state)
        lost = time.monotonic()
        output, _ = process.communicate(timeout=400)  # never hangs waiting for a node that is gone
    finally:
        process.kill()
    assert process.returncode == 1, output[-4000:]
    assert time.monotonic() - lost < 120  # one 20 s start attempt, then the error
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    message = " ".join(output.split())
    assert "no longer has room for scaling.num_workers=2" in message and "set scaling.min_workers" in message, output[-4000:]
    assert "no longer has room" in run.data.tags["orchestrator.error"]
