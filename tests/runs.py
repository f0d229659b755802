"""Running the CLI and reading what a run left in MLflow (shared by the Ray-tier tests)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient

ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))
# Enough samples that an epoch takes a few seconds on 2 CPUs, so a signal lands mid-epoch.
SLOW_RUN = ["data=synthetic", "data.num_samples=60000", "data.batch_size=256", "model=mlp", "model.hidden_dim=256",
            "callbacks=none", "tracking.log_model=false"]


def only_run(client: MlflowClient):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def wait_for_epochs(client: MlflowClient, count: int, process: subprocess.Popen, timeout_s: float = 400) -> str:
    """Block until the (only) run has `count` val/acc points; returns its id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        try:
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        except Exception:  # the store is created by the run itself
            runs = []
        if runs and len(client.get_metric_history(runs[0].info.run_id, "val/acc")) >= count:
            return runs[0].info.run_id
        time.sleep(0.5)
    raise AssertionError(f"no {count} epochs within {timeout_s} s")



def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found
