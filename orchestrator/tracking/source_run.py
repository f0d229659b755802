"""What a run of `orchestrate train` left that a later command starts from: its config and its best
checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import ConfigError


def fetch_source_run(client, run_id: str, folder: Path) -> tuple[dict[str, Any], Path]:
    """The source run's config.yaml (as a dict) and its checkpoints/best.ckpt, or a ConfigError."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException as err:
        raise ConfigError("source.run_id", f"no MLflow run {run_id!r} in this tracking store", "check the id and tracking.uri") from err
    try:
        config_file = Path(client.download_artifacts(run_id, "config.yaml", str(folder)))
        checkpoint = Path(client.download_artifacts(run_id, "checkpoints/best.ckpt", str(folder)))
    except (MlflowException, OSError) as err:
        raise ConfigError(
            "source.run_id",
            f"run {run_id} has no config.yaml and checkpoints/best.ckpt",
            "give a run of `orchestrate train` (or use source.checkpoint=PATH)",
        ) from err
    return yaml.safe_load(config_file.read_text()), checkpoint
