"""Reading what a run left in MLflow (shared by the Ray-tier tests)."""

from __future__ import annotations

from mlflow import MlflowClient


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found
