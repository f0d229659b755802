"""Compose a verb's real config as the CLI would (shared by the conftest fixtures and tests)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from orchestrator.config.conf_dir import CONF_DIR
from orchestrator.config.schema import register_schemas

register_schemas()


def compose_config(config_name: str, overrides: list[str], tmp_path: Path | None = None) -> DictConfig:
    """Compose a verb's real config as the CLI would, with paths redirected into tmp_path."""
    extra = []
    if tmp_path is not None:
        extra = [f"paths.storage_dir={tmp_path / 'ray_results'}", f"paths.output_dir={tmp_path / 'outputs'}"]
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose(config_name, overrides=[*extra, *overrides])
