"""TokenCache: tokenise a dataset once and keep the tensors in a file keyed by content and settings.

The key hashes the bytes of every input file and the tokenizer settings, so a changed file or setting
gives a new entry and an unchanged one is read back (by every worker, every epoch) instead of being
tokenised again. The first builder on a machine (the driver, when it checks the config) writes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path("~/.cache/orchestrator/tokens")
CHUNK_BYTES = 1 << 20


def content_key(files: list[Path], settings: dict[str, Any]) -> str:
    """A hex digest of the files' names and bytes plus the JSON of `settings`."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()[:24]


class TokenCache:
    """A folder of `<name>-<key>.pt` files written atomically, read with `weights_only=True`.

    Args:
        cache_dir: the folder (null: ~/.cache/orchestrator/tokens).
    """

    def __init__(self, cache_dir: str | None = None):
        self.folder = Path(cache_dir or DEFAULT_CACHE_DIR).expanduser()

    def get_or_build(self, name: str, key: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The cached entry, or `build()` written to the cache (a dict of tensors, ints, strings, lists)."""
        file = self.folder / f"{name}-{key}.pt"
        if file.is_file():
            try:
                return torch.load(file, map_location="cpu", weights_only=True)
            except Exception as err:  # a truncated or foreign file: rebuild it
                log.warning("token cache %s unreadable (%s); rebuilding", file, err)
        entry = build()
        self.folder.mkdir(parents=True, exist_ok=True)
        # Write then rename: workers reading concurrently see the whole file or none.
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        os.close(fd)
        torch.save(entry, tmp)
        os.replace(tmp, file)
        log.info("tokenised once, cached in %s", file)
        return entry
