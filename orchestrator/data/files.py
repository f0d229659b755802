"""Where a streamed dataset is: its files listed through pyarrow's filesystems (a local or mounted folder,
a glob, `s3://...`), their one format, their schema, and a digest of the listing.

Nothing here reads rows: listing, a Parquet footer or a CSV's first block is all it takes, so these
checks run on the driver before Ray starts and a wrong path, format, column or credential fails in
seconds with the key named (exit 2).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
GLOB_CHARACTERS = "*?["
CREDENTIAL_FIX = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and AWS_ENDPOINT_URL for an S3-compatible endpoint"


@dataclass(frozen=True)
class Listing:
    """The files of one dataset path, all of one format.

    Attributes:
        uri: the path as the user gave it. filesystem: the pyarrow filesystem the files are on.
        files: their paths on that filesystem, sorted. format: parquet, csv or json (JSON Lines).
        sizes, mtimes_ns: per file, from the listing (no file is opened).
    """

    uri: str
    filesystem: Any
    files: tuple[str, ...]
    format: str
    sizes: tuple[int, ...]
    mtimes_ns: tuple[int, ...]

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    @property
    def digest(self) -> str:
        """sha256 over every file's path, size and modification time: it changes when any file changes,
        is added or goes, and never samples rows."""
        entries = [[path, size, mtime] for path, size, mtime in zip(self.files, self.sizes, self.mtimes_ns, strict=True)]
        return hashlib.sha256(json.dumps(entries).encode()).hexdigest()

    def schema(self, key: str):
        """The pyarrow schema of the files (a Parquet footer; a CSV's or JSON file's first block)."""
        import pyarrow.dataset as pads

        try:
            return pads.dataset(list(self.files), filesystem=self.filesystem, format=self.format).schema
        except (OSError, ValueError) as err:  # pyarrow.ArrowInvalid is a ValueError
            raise ConfigError(key, f"cannot read the schema of {self.uri}: {err}", "check that the files are valid") from err


def check_credentials(uri: str, key: str) -> None:
    """An s3:// path needs AWS credentials in the environment (or a profile): say which variable is missing."""
    if not uri.startswith(("s3://", "s3a://")):
        return
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and not env.get("AWS_SECRET_ACCESS_KEY"):
        raise ConfigError(key, f"AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not, for {uri}", "set AWS_SECRET_ACCESS_KEY")
    has_profile = env.get("AWS_PROFILE") or Path(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser().is_file()
    has_role = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not (env.get("AWS_ACCESS_KEY_ID") or has_profile or has_role):
        raise ConfigError(key, f"no AWS credentials for {uri}: AWS_ACCESS_KEY_ID is not set and there is no profile", CREDENTIAL_FIX)


def _filesystem(uri: str, key: str):
    """(pyarrow filesystem, path on it) of a local path or a URI."""
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
    try:
        return pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as err:
        raise ConfigError(key, f"{uri!r} is not a path pyarrow can read ({err})", "use a local path or an s3:// URI") from err


def _storage_error(uri: str, key: str, err: OSError) -> ConfigError:
    text = str(err)
    if any(word in text for word in ("ACCESS_DENIED", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403")):
        return ConfigError(key, f"the storage refused the credentials for {uri} ({text.splitlines()[0]})", CREDENTIAL_FIX)
    return ConfigError(key, f"cannot list {uri} ({text.splitlines()[0] if text else err.__class__.__name__})", "check the path")


def list_files(uri: str, key: str = "data.path") -> Listing:
    """The data files at `uri` (a file, a folder searched recursively, or a glob), of one format.
    Hidden and marker files (`.`, `_` prefixes, as Spark and Hadoop write them) are skipped."""
    import pyarrow.fs as pafs

    if not uri:
        raise ConfigError(key, "is required", f"set {key}=/path/to/folder or s3://bucket/prefix")
    check_credentials(uri, key)
    filesystem, path = _filesystem(uri, key)
    pattern = None
    if any(c in path for c in GLOB_CHARACTERS):
        parts = path.split("/")
        first = next(i for i, part in enumerate(parts) if any(c in part for c in GLOB_CHARACTERS))
        path, pattern = "/".join(parts[:first]) or "/", path
    try:
        top = filesystem.get_file_info(path)
        if top.type == pafs.FileType.NotFound:
            raise ConfigError(key, f"{uri} does not exist", "give a folder, a file or a glob of Parquet, CSV or JSONL files")
        found = [top] if top.type == pafs.FileType.File else filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    except OSError as err:
        raise _storage_error(uri, key, err) from err

    def wanted(info) -> bool:
        inside = info.path[len(path) :].strip("/").split("/") if info.path != path else [info.base_name]
        if any(part.startswith((".", "_")) for part in inside):  # hidden, or a marker/temporary file or folder
            return False
        # a glob's `*` stops at a `/`, as a shell's does
        return pattern is None or (info.path.count("/") == pattern.count("/") and fnmatch.fnmatch(info.path, pattern))

    files = [info for info in found if info.type == pafs.FileType.File and wanted(info)]
    by_format: dict[str, list] = {}
    for info in files:
        fmt = FORMATS.get(Path(info.base_name).suffix.lower())
        if fmt:
            by_format.setdefault(fmt, []).append(info)
    if not by_format:
        raise ConfigError(
            key, f"no Parquet, CSV or JSONL files match {uri}", f"point {key} at a folder or glob of .parquet, .csv or .jsonl files"
        )
    if len(by_format) > 1:
        counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_format.items()))
        raise ConfigError(key, f"{uri} mixes file formats ({counts})", "point it at files of one format (a glob such as *.parquet)")
    ((fmt, infos),) = by_format.items()
    infos.sort(key=lambda info: info.path)
    return Listing(
        uri=uri,
        filesystem=filesystem,
        files=tuple(info.path for info in infos),
        format=fmt,
        sizes=tuple(int(info.size or 0) for info in infos),
        mtimes_ns=tuple(int(info.mtime_ns or 0) for info in infos),
    )
