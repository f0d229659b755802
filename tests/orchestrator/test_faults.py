"""Faults injected for real: a worker SIGKILLed mid-run, a NaN loss, one rank raising,
a corrupt checkpoint, a tracking server that goes away mid-run. Ctrl-C then `orchestrate resume`: the
streamed S3 run of test_streamed_data.py, which pays for one such run and proves both."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from mlflow import MlflowClient
from ray._common.network_utils import find_free_port
from runs import ORCHESTRATE, SLOW_RUN, only_run, wait_for_epochs

from orchestrator.runtime.checkpoints import CHECKPOINT_NAME, newest_loadable


def train_workers(process: subprocess.Popen) -> list[psutil.Process]:
    """The RayTrainWorker processes of this run only (descendants of its embedded Ray)."""
    return [p for p in psutil.Process(process.pid).children(recursive=True) if "RayTrainWorker" in " ".join(p.cmdline())]


@pytest.mark.e2e
def test_worker_sigkill_resumes_from_checkpoint_in_the_same_run(tmp_path, cli_env):
    epochs = 6
    process = subprocess.Popen(
        [ORCHESTRATE, "train", *SLOW_RUN, f"trainer.max_epochs={epochs}", "scaling.num_workers=2", "scaling.max_failures=2"],
        cwd=tmp_path,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = MlflowClient(cli_env["MLFLOW_TRACKING_URI"])
    wait_for_epochs(client, 2, process)
    victims = train_workers(process)
    assert len(victims) == 2
    victims[1].send_signal(signal.SIGKILL)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]
    run = only_run(client)  # no second run for the restart
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["orchestrator.resumes"]) >= 1
    # Rank 0 logs an epoch before every rank has reported its checkpoint: the kill can land in between,
    # so the resume may start one epoch before the last one MLflow shows (that epoch was in flight).
    assert int(run.data.tags["orchestrator.resumed_from_epoch"]) >= 1
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert epochs <= len(history) <= epochs + 1  # at most the epoch in flight is recomputed
    assert max(m.step for m in history) == history[-1].step  # steps go on where they left off


@pytest.mark.ray
def test_nan_loss_fails_the_run_and_keeps_the_last_good_checkpoint(ray_cluster, compose_train, tracking_uri, tmp_path):
    from orchestrator.errors import TrainingError
    from orchestrator.training.run import run_train

    # Two sane epochs, then the step scheduler multiplies the learning rate by 1e30.
    cfg = compose_train(
        "optimizer=sgd",
        "optimizer.lr=0.01",
        "scheduler=step",
        "scheduler.step_size=2",
        "scheduler.gamma=1e30",
        "trainer.max_epochs=5",
        "callbacks=none",
        "scaling.num_workers=2",
    )
    with pytest.raises(TrainingError, match="training loss is (NaN|inf)"):
        run_train(cfg)
    run = only_run(MlflowClient(tracking_uri))
    assert run.info.status == "FAILED"
    assert "NonFiniteLossError" in run.data.tags["orchestrator.error"]
    checkpoints = sorted((tmp_path / "ray_results" / run.info.run_id).glob("checkpoint_*"))
    assert len(checkpoints) >= 1
    path, contents = newest_loadable(checkpoints[-1])
    assert contents["epoch"] >= 1 and all(torch.isfinite(v).all() for v in contents["state_dict"].values())


# A user's own callback (shipped to the workers by the product, as any `_target_` outside the installed
# packages): rank 1 alone raises as its second epoch starts, while rank 0 goes on into that epoch and
# waits for rank 1 in the first gradient all-reduce.
ONE_RANK_RAISES = """
from lightning import Callback


class RaiseOnRankOne(Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.global_rank == 1 and trainer.current_epoch == 1:
            raise RuntimeError("rank 1 gives up at epoch 2")
"""


@pytest.mark.e2e
def test_one_rank_raising_ends_the_whole_run_failed_instead_of_blocking_the_others(tmp_path, cli_env):
    (tmp_path / "one_rank.py").write_text(ONE_RANK_RAISES)
    started = time.monotonic()
    out = subprocess.run(
        [
            ORCHESTRATE,
            "train",
            "data=synthetic",
            "data.num_samples=4096",
            "model=mlp",
            "callbacks=none",
            "tracking.log_model=false",
            "trainer.max_epochs=4",
            "scaling.num_workers=2",
            "+callbacks.one_rank._target_=one_rank.RaiseOnRankOne",
        ],
        cwd=tmp_path,
        env={**cli_env, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    took = time.monotonic() - started
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "rank 1: RuntimeError: rank 1 gives up at epoch 2" in " ".join((out.stdout + out.stderr).split())
    run = only_run(MlflowClient(cli_env["MLFLOW_TRACKING_URI"]))
    assert run.info.status == "FAILED" and "rank 1 gives up" in run.data.tags["orchestrator.error"]
    assert len(MlflowClient(cli_env["MLFLOW_TRACKING_URI"]).get_metric_history(run.info.run_id, "val/acc")) == 1
    assert took < 300  # a whole run, start to FAILED: rank 0 was not left waiting for rank 1


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    run = tmp_path / "run"
    good, bad = run / "checkpoint_2026-01-01_00-00-01", run / "checkpoint_2026-01-01_00-00-02"
    for folder in (good, bad):
        folder.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, good / CHECKPOINT_NAME)
    torch.save({"state_dict": {"w": torch.ones(3)}, "epoch": 2}, bad / CHECKPOINT_NAME)
    data = (bad / CHECKPOINT_NAME).read_bytes()
    (bad / CHECKPOINT_NAME).write_bytes(data[: len(data) // 2])  # truncated mid-write
    path, contents = newest_loadable(bad)
    assert path == good / CHECKPOINT_NAME and contents["epoch"] == 1
    assert "truncated or corrupt" in caplog.text
    shutil.rmtree(good)
    assert newest_loadable(bad) is None


def start_server(db: Path, port: int, artifacts: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--default-artifact-root",
            str(artifacts),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300  # seconds when the machine is idle; minutes when it is not
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    raise AssertionError("mlflow server did not start")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def test_metrics_logged_while_the_tracking_server_is_down_land_when_it_returns(tmp_path):
    from orchestrator.tracking.run_logger import RunLogger

    port = find_free_port()
    db, artifacts = tmp_path / "mlflow.db", tmp_path / "artifacts"
    server = start_server(db, port, artifacts)
    try:
        uri = f"http://127.0.0.1:{port}"
        client = MlflowClient(uri)
        run_id = client.create_run(client.create_experiment("outage")).info.run_id
        logger = RunLogger(tracking_uri=uri, run_id=run_id)
        logger.log_metrics({"val/acc": 0.1}, step=1)
        stop_server(server)
        started = time.monotonic()
        logger.log_metrics({"val/acc": 0.2}, step=2)  # refused: buffered, training goes on
        logger.log_metrics({"val/acc": 0.3}, step=3)
        assert time.monotonic() - started < 30 and len(logger.pending) == 2
        server = start_server(db, port, artifacts)
        logger.log_metrics({"val/acc": 0.4}, step=4)
        logger.finalize()
        assert not logger.pending
        history = MlflowClient(uri).get_metric_history(run_id, "val/acc")
        assert [(m.step, m.value) for m in history] == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]
    finally:
        stop_server(server)


def test_no_code_loads_checkpoints_without_weights_only():
    """Every torch.load, and every Lightning call that restores a checkpoint (ckpt_path=...), says
    weights_only=True itself: not weights_only=False, and not left to a library default that moved."""
    import ast

    root = Path(__file__).resolve().parents[2]
    offenders, loads = [], 0
    for folder in ("orchestrator", "trainers", "hydra_plugins", "benchmarks"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                keywords = {k.arg: k.value for k in node.keywords}
                name = ast.unparse(node.func)
                if name == "torch.load" or "ckpt_path" in keywords:
                    loads += 1
                    flag = keywords.get("weights_only")
                    if not (isinstance(flag, ast.Constant) and flag.value is True):
                        offenders.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert loads >= 5  # the scan sees the loads it is meant to check
    assert offenders == []
