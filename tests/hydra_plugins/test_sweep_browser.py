"""End-to-end: a grid sweep through `orchestrate train -m` against a real `mlflow server`, a re-run of
the same sweep and `orchestrate compare` (checked without a browser), then the MLflow UI page that
`compare` printed, loaded as printed in headless Chromium (the one thing a browser must check)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

PORTS = range(15200, 15300)  # this test's port range on the shared machine
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1600,1200",
)
SWEEP = [
    "trainer.limit_train_batches=1.0,0.5,0.25",  # the third trial fails once (FAIL_ONCE below)
    "data=digits",
    "model=mlp",
    "model.hidden_dim=16",
    "trainer.max_epochs=2",
    "scaling.num_workers=1",
    "tracking.experiment=sweep-e2e",
    "tracking.log_model=false",
    "+callbacks.flaky._target_=fail_once.FailOnce",
]
# A user's callback (shipped to the workers like any `_target_`): the trial on a quarter of the batches
# raises the first time it trains, and trains normally once `marker` exists, as after a fixed glitch.
FAIL_ONCE = """
from pathlib import Path

from lightning import Callback


class FailOnce(Callback):
    def __init__(self, marker):
        self.marker = Path(marker)

    def on_train_start(self, trainer, pl_module):
        if trainer.limit_train_batches == 0.25 and not self.marker.exists():
            self.marker.touch()
            raise RuntimeError("a glitch on the first attempt")
"""


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.skip("no free port in 15200-15299")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # a loaded 2-core machine takes long to start it
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("mlflow server did not answer within 180 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


def orchestrate(args: list[str], env: dict, cwd: Path, timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("orchestrate")), *args],
        env={**env, "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def page_text(url: str, expected: list[str], timeout_s: float = 90) -> str:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(url)
        text = ""

        def shows_everything(d) -> bool:
            nonlocal text
            text = d.find_element(By.TAG_NAME, "body").text
            return all(item in text for item in expected)

        try:
            WebDriverWait(driver, timeout_s, poll_frequency=1).until(shows_everything)
        except Exception:  # noqa: BLE001 (the assertion below shows what was missing)
            pass
        return text
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def swept(mlflow_server, tmp_path_factory):
    """The commands a user types: the sweep, the same sweep again, then `orchestrate compare` on it."""
    import os

    tmp_path = tmp_path_factory.mktemp("sweep")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "RAY_ADDRESS"))}
    env.update({"MLFLOW_TRACKING_URI": mlflow_server, "PYTHONPATH": str(tmp_path)})
    (tmp_path / "fail_once.py").write_text(FAIL_ONCE)
    sweep_args = ["train", "-m", *SWEEP, f"+callbacks.flaky.marker={tmp_path / 'failed-once'}"]
    client = MlflowClient(mlflow_server)
    first = orchestrate(sweep_args, env, tmp_path)
    experiment = client.get_experiment_by_name("sweep-e2e")
    # what the first sweep left, before the second one changes it
    first_sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrator.kind` = 'sweep'") if experiment else []
    first_trials = client.search_runs([experiment.experiment_id], "tags.`orchestrator.kind` = 'train'") if experiment else []
    again = orchestrate([*sweep_args, "hydra.launcher.in_process_trials=false"], env, tmp_path)
    sweep_ids = [r.info.run_id for r in client.search_runs([experiment.experiment_id], "tags.`orchestrator.kind` = 'sweep'")]
    compared = plot = None
    if sweep_ids:
        plot = tmp_path / "cmp.png"
        compared = orchestrate(["compare", "--parent", sweep_ids[0], "--metric", "val/acc", "--output", str(plot)], env, tmp_path)
    return {
        "tmp_path": tmp_path,
        "client": client,
        "experiment": experiment,
        "first": first,
        "again": again,
        "compared": compared,
        "plot": plot,
        "first_sweeps": first_sweeps,
        "first_trials": first_trials,
        "server": mlflow_server,
    }


@pytest.mark.e2e
def test_grid_sweep_rerun_and_compare(swept):
    tmp_path, client, experiment, first = swept["tmp_path"], swept["client"], swept["experiment"], swept["first"]

    # 1. three trials on Ray, two at a time; the one on a quarter of the batches fails, the others go on
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    assert "1 of 3 trials failed" in first.stderr, first.stderr[-3000:]
    sweeps = swept["first_sweeps"]
    assert len(sweeps) == 1
    sweep = sweeps[0]
    assert sweep.info.status == "FAILED"  # a trial failed; re-running the sweep continues it
    trials = [t for t in swept["first_trials"] if t.data.tags.get("mlflow.parentRunId") == sweep.info.run_id]
    by_batches = {t.data.params["trainer.limit_train_batches"]: t for t in trials}
    assert sorted(by_batches) == ["0.25", "0.5", "1.0"]
    assert by_batches["0.25"].info.status == "FAILED"
    assert "a glitch on the first attempt" in by_batches["0.25"].data.tags.get("orchestrator.error", "")
    finished = [by_batches["1.0"], by_batches["0.5"]]
    for trial in finished:
        assert trial.info.status == "FINISHED"
        assert trial.data.tags["orchestrator.kind"] == "train"
        assert len(client.get_metric_history(trial.info.run_id, "val/acc")) == 2
    best = max(finished, key=lambda t: t.data.metrics["val/acc"])
    assert sweep.data.tags["orchestrator.best_run_id"] == best.info.run_id
    assert sweep.data.metrics["best/val/acc"] == pytest.approx(best.data.metrics["val/acc"])
    assert "plots/metric_vs_params.png" in [a.path for a in client.list_artifacts(sweep.info.run_id, "plots")]

    # 2. the same command again: FINISHED trials are skipped, the failed one runs again and now
    # passes, under the same sweep run, which ends FINISHED (the superseded attempt no longer counts).
    # The first sweep trained its 1-worker trials in their Ray tasks (in_process_trials, the default);
    # this one starts a Ray Train worker group for the trial, so both paths are covered.
    again = swept["again"]
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "2 trial(s) already FINISHED" in again.stdout, again.stdout[-3000:]
    assert len(client.search_runs([experiment.experiment_id], "tags.`orchestrator.kind` = 'sweep'")) == 1
    trials = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{sweep.info.run_id}'")
    assert sorted(t.info.status for t in trials) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    # which path trained: in_process.py names checkpoints by epoch, a Ray Train worker group by time
    first_path = {p.name for p in (tmp_path / "ray_results" / by_batches["1.0"].info.run_id).glob("checkpoint_*")}
    (passed,) = [t for t in trials if t.info.status == "FINISHED" and t.data.params["trainer.limit_train_batches"] == "0.25"]
    second_path = {p.name for p in (tmp_path / "ray_results" / passed.info.run_id).glob("checkpoint_*") if p.is_dir()}
    assert first_path and all(re.fullmatch(r"checkpoint_\d{6}", name) for name in first_path), first_path
    assert second_path and all(name.startswith("checkpoint_20") for name in second_path), second_path
    rerun = client.get_run(sweep.info.run_id)
    assert rerun.info.status == "FINISHED"
    assert rerun.data.metrics["num_trials"] == 3 and rerun.data.metrics["num_failed_trials"] == 0

    # 3. orchestrate compare: table, plot, and the UI's compare-view URL
    compared, plot = swept["compared"], swept["plot"]
    assert compared.returncode == 0, compared.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "trainer.limit_train_batches" in compared.stdout
    url = re.search(r"compare view: (\S+)", compared.stdout).group(1)
    assert url.startswith(f"{swept['server']}/#/compare-runs?runs=")


@pytest.mark.e2e
@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="Debian chromium + chromium-driver not installed")
def test_the_compare_view_that_compare_printed_shows_the_trials_in_a_browser(swept):
    """The MLflow UI's compare view, loaded from the URL `orchestrate compare` printed, as printed."""
    client, experiment, compared = swept["client"], swept["experiment"], swept["compared"]
    assert compared is not None and compared.returncode == 0, "the sweep or compare failed: see the test above"
    url = re.search(r"compare view: (\S+)", compared.stdout).group(1)
    sweep_id = client.search_runs([experiment.experiment_id], "tags.`orchestrator.kind` = 'sweep'")[0].info.run_id
    finished = [
        t
        for t in client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{sweep_id}'")
        if t.info.status == "FINISHED"
    ]
    expected = [*(t.info.run_name for t in finished), "trainer.limit_train_batches", "val/acc"]
    text = page_text(url, expected)
    missing = [item for item in expected if item not in text]
    assert not missing, f"the compare view does not show {missing}; it shows:\n{text[:3000]}"
    assert "0.5" in text and "1.0" in text
    for trial in finished:  # each trial's val/acc, as the UI rounds it
        assert f"{trial.data.metrics['val/acc']:.3f}".rstrip("0")[:4] in text
