"""`orchestrate submit` and `orchestrate jobs` end to end against deploy/local: a real Ray head + worker
node (separate `ray start` processes, token auth on) and an MLflow server on PostgreSQL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from urllib.parse import urlsplit

import psutil
import pytest
from local_deploy import PG_PORT, orchestrate, user_env
from mlflow import MlflowClient

JOB_ID = re.compile(r"orchestrate-train-\d{8}-\d{6}-[0-9a-f]{6}")
pytestmark = pytest.mark.e2e


def one_line(text: str) -> str:
    """rich wraps messages at the terminal width: compare with whitespace collapsed."""
    return " ".join(text.split())


def runs_of(tracking_uri: str, job_id: str):
    client = MlflowClient(tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string=f"tags.`ray.job_id` = '{job_id}'")


def worker_nodes(address: str, job_id: str) -> list[str]:
    """The node of each Ray Train worker of the job, from Ray's state API (in a subprocess: token mode
    must be set before Ray is imported, and this process may hold another Ray)."""
    script = f"""
import json
from ray.util.state import list_actors, list_jobs
[job] = [j for j in list_jobs(address={address!r}) if j.submission_id == {job_id!r}]
actors = list_actors(address={address!r}, filters=[("job_id", "=", job.job_id)], detail=True, limit=1000)
print(json.dumps([a.node_id for a in actors if a.class_name == "RayTrainWorker"]))
"""
    out = subprocess.run([sys.executable, "-c", script], env=user_env(RAY_AUTH_MODE="token"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_submit_follows_a_training_job_to_success_on_both_nodes(local_deploy, tmp_path):
    started = time.monotonic()
    out = orchestrate(
        "submit",
        "--address",
        local_deploy.address,
        "--",
        "train",
        "data=digits",
        "model=mlp",
        "trainer.max_epochs=2",
        "scaling.num_workers=2",
        f"tracking.uri={local_deploy.tracking_uri}",
        cwd=tmp_path,
    )
    print(f"submit, follow to the end: {time.monotonic() - started:.0f} s")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    job_id = JOB_ID.search(out.stdout).group(0)
    assert f"job {job_id} SUCCEEDED" in one_line(out.stdout)
    assert "epoch 2/2" in out.stdout  # the job's log was followed

    [run] = runs_of(local_deploy.tracking_uri, job_id)
    assert run.info.status == "FINISHED" and run.data.tags["orchestrator.kind"] == "train"
    assert run.data.params["scaling.num_workers"] == "2"
    assert run.info.run_id in one_line(out.stdout)  # submit names the job's run when it ends

    nodes = worker_nodes(local_deploy.address, job_id)
    assert len(nodes) == 2 and len(set(nodes)) == 2, nodes  # cluster.address=null meant the job's cluster

    listing = orchestrate("jobs", "list", "--address", local_deploy.address, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    [row] = [line for line in listing.stdout.splitlines() if job_id in line]
    assert "SUCCEEDED" in row and run.info.run_id in row and "python -m orchestrator train" in row
    # `orchestrate jobs list | grep JOB_ID` at a pipe's 80 columns: the id whole, the run id's prefix beside it
    narrow = orchestrate("jobs", "list", "--address", local_deploy.address, cwd=tmp_path, env=user_env(COLUMNS="80"))
    [row] = [line for line in narrow.stdout.splitlines() if job_id in line]
    shown_id, status, run_prefix = row.split()
    assert (shown_id, status) == (job_id, "SUCCEEDED") and len(run_prefix) >= 8, narrow.stdout
    assert run.info.run_id.startswith(run_prefix)
    assert "…" not in narrow.stdout and max(len(line) for line in narrow.stdout.splitlines()) <= 80
    listed = orchestrate("jobs", "list", "--json", "--address", local_deploy.address, cwd=tmp_path)
    [job] = [job for job in json.loads(listed.stdout) if job["job_id"] == job_id]
    assert job["status"] == "SUCCEEDED" and job["mlflow_run_ids"] == [run.info.run_id]
    status = orchestrate("jobs", "status", job_id, "--address", local_deploy.address, cwd=tmp_path)
    assert status.returncode == 0 and "SUCCEEDED" in status.stdout and run.info.run_id in status.stdout
    logs = orchestrate("jobs", "logs", job_id, "--address", local_deploy.address, cwd=tmp_path)
    assert logs.returncode == 0 and "epoch 2/2" in logs.stdout and "training run finished" in logs.stdout


def test_a_sweep_submitted_as_a_job_tags_every_run_and_a_failed_job_fails_the_command(local_deploy, tmp_path):
    """The README's `submit ... -- train -m ...`: the sweep run and each trial carry ray.job_id and the
    listing names them (its 1-worker trials train in their Ray tasks on the cluster). Then a job whose
    training fails: submit exits non-zero, the job is FAILED, and so is its run."""
    out = orchestrate(
        "submit",
        "--address",
        local_deploy.address,
        "--",
        "train",
        "-m",
        "optimizer.lr=1e-3,1e-2",
        "data=digits",
        "model=mlp",
        "trainer.max_epochs=2",
        "scaling.num_workers=1",
        "tracking.log_model=false",
        f"tracking.uri={local_deploy.tracking_uri}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    job_id = JOB_ID.search(out.stdout).group(0)
    runs = runs_of(local_deploy.tracking_uri, job_id)
    [sweep] = [r for r in runs if r.data.tags["orchestrator.kind"] == "sweep"]
    trials = [r for r in runs if r.data.tags["orchestrator.kind"] == "train"]
    assert sweep.info.status == "FINISHED" and len(trials) == 2
    assert all(t.info.status == "FINISHED" and t.data.tags["mlflow.parentRunId"] == sweep.info.run_id for t in trials)
    listing = orchestrate("jobs", "list", "--address", local_deploy.address, cwd=tmp_path)
    assert all(r.info.run_id[:8] in listing.stdout for r in runs), listing.stdout

    failed = orchestrate(
        "submit",
        "--address",
        local_deploy.address,
        "--",
        "train",
        "data=digits",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=0",
        "scaling.num_workers=1",
        f"tracking.uri={local_deploy.tracking_uri}",
        cwd=tmp_path,
    )
    assert failed.returncode != 0, failed.stdout[-3000:]
    failed_id = JOB_ID.search(failed.stdout).group(0)
    assert f"job {failed_id} FAILED" in one_line(failed.stdout)
    [run] = runs_of(local_deploy.tracking_uri, failed_id)
    assert run.info.status == "FAILED" and "no checkpoint" in run.data.tags["orchestrator.error"]


def test_no_wait_then_stop_ends_the_job_and_its_run(local_deploy, tmp_path):
    out = orchestrate(
        "submit",
        "--no-wait",
        "--address",
        local_deploy.address,
        "--",
        "train",
        "data=digits",
        "trainer.max_epochs=1000",
        "callbacks=none",
        "scaling.num_workers=1",
        "tracking.log_model=false",
        f"tracking.uri={local_deploy.tracking_uri}",
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    job_id = out.stdout.strip().splitlines()[-1]
    assert JOB_ID.fullmatch(job_id)

    deadline = time.monotonic() + 300
    while not [run for run in runs_of(local_deploy.tracking_uri, job_id) if "val/acc" in run.data.metrics]:
        assert time.monotonic() < deadline, "the job never trained an epoch"  # stop it while it trains
        time.sleep(2)
    stop = orchestrate("jobs", "stop", job_id, "--address", local_deploy.address, cwd=tmp_path, timeout=180)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"job {job_id}: STOPPED" in one_line(stop.stdout)
    status = orchestrate("jobs", "status", job_id, "--address", local_deploy.address, cwd=tmp_path)
    assert "STOPPED" in status.stdout
    [run] = runs_of(local_deploy.tracking_uri, job_id)
    deadline = time.monotonic() + 90
    while run.info.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(2)
        [run] = runs_of(local_deploy.tracking_uri, job_id)
    assert run.info.status in ("KILLED", "FAILED"), run.info.status  # never left RUNNING


@pytest.mark.parametrize(
    "case", ["unknown job", "missing token", "refused token", "over the upload limit", "mlflow unreachable", "relative sqlite"]
)
def test_bad_input_is_a_clear_error(local_deploy, tmp_path, case):
    address = local_deploy.address
    if case == "unknown job":
        out = orchestrate("jobs", "status", "no-such-job", "--address", address, cwd=tmp_path)
        expected = "JOB_ID: no job 'no-such-job' on the Ray cluster"
    elif case == "missing token":
        out = orchestrate("jobs", "list", "--address", address, cwd=tmp_path, env=user_env(HOME=str(tmp_path)))
        expected = "requires an auth token and none was found here"
    elif case == "refused token":
        out = orchestrate("jobs", "list", "--address", address, cwd=tmp_path, env=user_env(RAY_AUTH_TOKEN="wrong"))
        expected = "refused the auth token"
    elif case == "over the upload limit":
        with open(tmp_path / "data.bin", "wb") as handle:  # sparse: 600 MiB that take no disk space
            handle.truncate(600 * 1024 * 1024)
        out = orchestrate(
            "submit", "--address", address, "--", "train", cwd=tmp_path, env=user_env(MLFLOW_TRACKING_URI=local_deploy.tracking_uri)
        )
        expected = "--working-dir: " + str(tmp_path) + " holds 600 MiB to upload, over Ray's limit of 512 MiB"
    elif case == "mlflow unreachable":
        out = orchestrate("submit", "--address", address, "--", "train", "tracking.uri=http://127.0.0.1:1", cwd=tmp_path)
        expected = "tracking.uri: the cluster runs on this machine and tracking.uri: no MLflow server answered"
    else:
        out = orchestrate("submit", "--address", address, "--", "train", "tracking.uri=sqlite:///mlruns.db", cwd=tmp_path)
        expected = "tracking.uri: sqlite:///mlruns.db is relative"
    assert out.returncode == 2, out.stdout + out.stderr
    assert expected in one_line(out.stderr), out.stderr
    assert "Traceback" not in out.stderr
    assert "submitted job" not in out.stdout


def test_unreachable_address_fails_within_seconds(tmp_path):
    started = time.monotonic()
    out = orchestrate("submit", "--address", "http://127.0.0.1:1", "--", "train", cwd=tmp_path)
    assert out.returncode == 2 and "--address: nothing answers at 127.0.0.1:1" in one_line(out.stderr)
    out = orchestrate("jobs", "list", cwd=tmp_path, env=user_env(RAY_ADDRESS="127.0.0.1:9"))  # --address from $RAY_ADDRESS
    assert out.returncode == 2 and "--address: nothing answers at 127.0.0.1:9 within 5 s" in one_line(out.stderr)
    assert time.monotonic() - started < 30
    assert "Traceback" not in out.stderr


def test_jobs_help_and_missing_job_id(tmp_path):
    out = orchestrate("jobs", "status", "--address", "http://127.0.0.1:1", cwd=tmp_path)
    assert out.returncode == 2 and "needs a JOB_ID" in out.stderr
    out = orchestrate("submit", "--help", cwd=tmp_path)
    assert out.returncode == 0 and "--no-wait" in out.stdout and "-- VERB [OVERRIDES]" in out.stdout


def test_dashboard_mlflow_and_postgres_listen_on_loopback_only(local_deploy):
    """What deploy/local starts answers only on this machine unless told otherwise (the scripts' --host
    and the dashboard's --dashboard-host are 127.0.0.1 by default)."""
    ports = {
        urlsplit(local_deploy.address).port: "Ray dashboard",
        urlsplit(local_deploy.tracking_uri).port: "MLflow",
        PG_PORT: "PostgreSQL",
    }
    listening: dict[int, set[str]] = {}
    for connection in psutil.net_connections(kind="inet"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port in ports:
            listening.setdefault(connection.laddr.port, set()).add(connection.laddr.ip)
    assert set(listening) == set(ports), f"not listening: {[ports[p] for p in set(ports) - set(listening)]}"
    assert all(addresses == {"127.0.0.1"} for addresses in listening.values()), listening


def test_state_folders_never_go_to_git_or_a_job_upload(local_deploy):
    """The state folders hold PostgreSQL's data, logs and passwords: a `submit` from a folder that
    contains one (Ray's upload honours .gitignore) leaves them behind, wherever --state-dir put them."""
    from orchestrator.jobs.submit import EXCLUDES, working_dir_size

    _, biggest = working_dir_size(local_deploy.state, EXCLUDES)
    assert biggest == [], biggest
    assert (local_deploy.state / "mlflow" / "pgdata").is_dir()  # there was something to leave behind
