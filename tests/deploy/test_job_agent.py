"""Two Rays on one machine: where they collide is the dashboard agent's port (Ray's fixed default 52365).
A head whose agent finds its port taken runs on without it, and its Jobs API answers every submission
with HTTP 500 "No available agent". The embedded Ray leaves that port to a head started beside it,
deploy/local/cluster refuses a taken port and fails when an agent cannot start, and `submit` explains a
head without its agent. Heads here are `ray start --head --block` in a process group of their own,
stopped by their pid (`ray stop` would stop every Ray on the machine, the embedded ones included)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from local_deploy import CLUSTER_SCRIPT, START_TIMEOUT_S, user_env
from mlflow import MlflowClient
from runs import ORCHESTRATE, SLOW_RUN, wait_for_epochs

from orchestrator.jobs import client as job_client

pytestmark = pytest.mark.e2e

RAY = str(Path(ORCHESTRATE).with_name("ray"))
# deploy/local/cluster's ports in the script test (a head alone: 15720..15742), clear of the session
# deployment (15343.., 15392..15395) and the node-loss clusters (15420..15692).
PORT_BASE = 15720
START_ATTEMPTS = 3


def ray_processes(marker: str) -> list[psutil.Process]:
    """The processes of one Ray whose command lines name `marker` (its temp dir)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(marker in part for part in process.info["cmdline"] or []):
                found.append(process)
    return found


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def stop_head(head: subprocess.Popen) -> None:
    head.send_signal(signal.SIGTERM)  # `ray start --block` stops its node
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)  # whatever that node's process group left
    head.wait()


@contextlib.contextmanager
def ray_head(*flags: str):
    """A Ray head as `ray start --head` starts it, on free ports except those `flags` set; the dashboard agent
    keeps Ray's default port unless a flag sets it. Yields the Jobs API address once the dashboard answers."""
    from ray._common.network_utils import find_free_port

    temp_dir = tempfile.mkdtemp(prefix="orch-head-", dir="/tmp")  # short: unix socket paths are limited
    dashboard_port = find_free_port()
    command = [
        RAY,
        "start",
        "--head",
        "--block",
        "--num-cpus=1",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        f"--port={find_free_port()}",
        f"--dashboard-port={dashboard_port}",
        "--dashboard-host=127.0.0.1",
        f"--ray-client-server-port={find_free_port()}",
        "--min-worker-port=0",
        "--max-worker-port=0",
        *flags,
    ]
    heads = []
    try:
        # Ray gives a raylet a fixed 30 s to register; on a loaded machine the head can miss it and exit.
        for attempt in range(START_ATTEMPTS):
            log = Path(temp_dir) / f"head-{attempt}.log"
            with open(log, "w") as out:
                heads.append(
                    subprocess.Popen(
                        command, env=user_env(RAY_AUTH_MODE="token"), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            deadline = time.monotonic() + START_TIMEOUT_S
            while heads[-1].poll() is None and not ("Ray runtime started" in log.read_text() and answers(dashboard_port)):
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(1)
            if heads[-1].poll() is None:
                break
        else:
            raise AssertionError(f"the head exited during start-up {START_ATTEMPTS} times: {log.read_text()[-3000:]}")
        yield f"http://127.0.0.1:{dashboard_port}"
    finally:
        for head in heads:
            stop_head(head)
        psutil.wait_procs(ray_processes(temp_dir), timeout=30)
        left = ray_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, [p.info["cmdline"] for p in left]


@contextlib.contextmanager
def port_held():
    """A free port, then held (bound and listening on every interface) as another process would hold it."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_head_started_while_an_embedded_run_trains_takes_jobs(tmp_path, monkeypatch):
    """`orchestrate train` on its embedded Ray, and beside it a head started by `ray start --head` with Ray's
    own agent port: the head takes a job (the embedded Ray took no fixed port)."""
    from ray._private.ray_constants import DEFAULT_DASHBOARD_AGENT_LISTEN_PORT

    holders = [
        c.pid
        for c in psutil.net_connections("inet")
        if c.laddr.port == DEFAULT_DASHBOARD_AGENT_LISTEN_PORT and c.status == psutil.CONN_LISTEN
    ]
    # else the head below would lose its agent whatever the embedded Ray does
    assert not holders, f"port {DEFAULT_DASHBOARD_AGENT_LISTEN_PORT} is already held on this machine by pid(s) {holders}"
    env = user_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlruns.db'}")
    train = subprocess.Popen(
        [ORCHESTRATE, "train", *SLOW_RUN, "trainer.max_epochs=100", "scaling.num_workers=1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_epochs(MlflowClient(env["MLFLOW_TRACKING_URI"]), 1, train)
        with ray_head() as address:
            monkeypatch.setenv("RAY_API_SERVER_ADDRESS", address)  # job_client.connect sets it: restored after
            client, address = job_client.connect(address)
            job_id = job_client.with_job_agent(address, lambda: client.submit_job(entrypoint="echo accepted"))
            deadline = time.monotonic() + 120
            while str(client.get_job_status(job_id)) not in job_client.TERMINAL_STATUSES:
                assert time.monotonic() < deadline, client.get_job_logs(job_id)
                time.sleep(1)
            assert str(client.get_job_status(job_id)) == "SUCCEEDED" and "accepted" in client.get_job_logs(job_id)
            assert train.poll() is None  # the embedded run trained on all along
    finally:
        train.send_signal(signal.SIGINT)  # the run ends KILLED and its Ray stops
        try:
            train.communicate(timeout=120)
        finally:
            train.kill()


def test_submit_to_a_head_without_its_job_agent_says_why(tmp_path, monkeypatch):
    """A head whose agent port another process holds: `submit` asks again for a bounded time, then says what
    it means and where to look, instead of Ray's bare HTTP 500."""
    from orchestrator.commands.submit import parse_args
    from orchestrator.errors import ClusterError
    from orchestrator.jobs.submit import run_submit

    monkeypatch.setattr(job_client, "JOB_AGENT_TIMEOUT_S", 1.0)  # each answer takes Ray's own 10 s wait
    with port_held() as agent_port, ray_head(f"--dashboard-agent-listen-port={agent_port}") as address:
        monkeypatch.setenv("RAY_API_SERVER_ADDRESS", address)
        started = time.monotonic()
        with pytest.raises(ClusterError) as error:
            run_submit(parse_args(["--address", address, "--working-dir", str(tmp_path), "--", "train"]))
        assert time.monotonic() - started < 60
    message = " ".join(str(error.value).split())
    assert f"--address: the Ray cluster at {address} has no job agent running on its head node" in message, message
    assert "dashboard_agent.log" in message and "another Ray on that machine holds the agent's port" in message
    assert "--dashboard-agent-listen-port" in message


def test_cluster_up_refuses_a_taken_port_and_fails_when_an_agent_cannot_start(tmp_path):
    """A port of the cluster's range held on the machine's IP alone (as another Ray's agents hold theirs) is
    refused before anything starts; one taken while the head starts (another Ray's agent got there first)
    fails `up` instead of leaving a head without its agent, and nothing of that head is left running."""
    from ray._private.services import get_node_ip_address

    state = tmp_path / "cluster"
    agent_port = PORT_BASE + 3 + 2  # the head's dashboard agent (see the script's port map)
    command = [str(CLUSTER_SCRIPT), "up", "--workers", "0", "--port-base", str(PORT_BASE), "--state-dir", str(state)]
    env = user_env(START_TIMEOUT_S=str(START_TIMEOUT_S), START_RETRIES="5", STOP_TIMEOUT_S="5")
    try:
        with socket.socket() as holder:
            holder.bind((get_node_ip_address(), agent_port))
            holder.listen()
            up = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert up.returncode == 1, up.stdout + up.stderr
        assert f"port(s) in {PORT_BASE}-{PORT_BASE + 22} in use: {agent_port} (pid {os.getpid()}" in up.stderr
        assert not (state / "head.pid").exists()

        taken = threading.Event()

        def take_the_agent_port():  # once the head starts, before its agent does
            deadline = time.monotonic() + 60
            while not (state / "head.log").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            thief.bind(("", agent_port))
            thief.listen()
            taken.set()

        with socket.socket() as thief:
            thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            threading.Thread(target=take_the_agent_port, daemon=True).start()
            up = subprocess.run(command, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S + 60)
        assert taken.is_set()
        assert up.returncode == 1, up.stdout + up.stderr
        message = " ".join(up.stderr.split())
        assert f"the dashboard agent of the head node could not listen on port {agent_port}" in message, message
        assert "dashboard_agent.log" in message and "pick another --port-base" in message
        assert "Ray cluster up" not in up.stdout
        assert not ray_processes(f"/tmp/ray-local-{PORT_BASE}")
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "down", "--state-dir", str(state)], env=env, capture_output=True, timeout=120)
