"""Which checkpoints a run keeps (callbacks.model_checkpoint), and finding a usable one in a run's Ray
storage: the newest one that loads, with a warning when the latest is truncated or corrupt."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import torch

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.ckpt"  # the file RayTrainReportCallback writes in each Ray checkpoint


class Policy(NamedTuple):
    """Which checkpoints a run keeps and which is best: callbacks.model_checkpoint."""

    monitor: str
    mode: str
    num_to_keep: int


def policy(config: dict[str, Any]) -> Policy:
    """callbacks.model_checkpoint of a resolved config, with its defaults (val/acc, max, keep 1)."""
    settings = (config.get("callbacks") or {}).get("model_checkpoint") or {}
    return Policy(settings.get("monitor", "val/acc"), settings.get("mode", "max"), settings.get("num_to_keep", 1))


def read_checkpoint(path: Path) -> dict | None:
    """The checkpoint's contents (weights_only=True), or None if it is missing, truncated or not one."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle opcode, missing file: all mean unusable
        log.debug("checkpoint %s does not load: %s", path, err)
        return None
    return checkpoint if isinstance(checkpoint, dict) and "state_dict" in checkpoint else None


def newest_loadable(latest_dir: str | Path) -> tuple[Path, dict] | None:
    """The checkpoint file in `latest_dir`, or, when it does not load, in the newest sibling
    `checkpoint_*` folder of the same run that does. Returns (file, contents) or None."""
    latest_dir = Path(latest_dir)
    candidates = [latest_dir] + sorted((p for p in latest_dir.parent.glob("checkpoint_*") if p.is_dir() and p != latest_dir), reverse=True)
    for folder in candidates:
        contents = read_checkpoint(folder / CHECKPOINT_NAME)
        if contents is None:
            log.warning("checkpoint %s is truncated or corrupt; trying the previous one", folder)
            continue
        return folder / CHECKPOINT_NAME, contents
    return None


def run_storage_dir(storage_dir: str, run_id: str) -> Path:
    """Ray's folder of one run (RunConfig.name is the MLflow run id)."""
    return Path(storage_dir).expanduser().resolve() / run_id


def run_checkpoints(storage_dir: str, run_id: str) -> list[str]:
    """The checkpoint folders of one run in Ray's storage, oldest first: a local folder, or a URI
    (s3://, gs://, file://) read through pyarrow's filesystems, as Ray itself reads it."""
    if "://" not in storage_dir:
        return [str(path) for path in sorted(run_storage_dir(storage_dir, run_id).glob("checkpoint_*"))]
    from pyarrow import fs

    root = f"{storage_dir.rstrip('/')}/{run_id}"
    filesystem, path = fs.FileSystem.from_uri(root)
    found = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
    return sorted(
        f"{root}/{info.base_name}" for info in found if info.type == fs.FileType.Directory and info.base_name.startswith("checkpoint_")
    )
