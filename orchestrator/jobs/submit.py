"""What `orchestrate submit` sends: the same command as a Ray job, with this directory as its working_dir
(minus .git, virtualenvs, MLflow stores, Ray results, Hydra outputs and credential files), and following
it to its end."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.errors import ConfigError
from orchestrator.net import LOOPBACK_HOSTS, is_loopback

log = logging.getLogger(__name__)


# What never goes to the cluster (gitwildmatch patterns, as Ray's runtime_env `excludes`; Ray also
# honours .gitignore and .rayignore).
EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    # MLflow stores, Ray results, Hydra outputs, the local deploy state
    "mlruns.db",
    "mlflow.db",
    "mlruns/",
    "mlartifacts/",
    "ray_results/",
    "outputs/",
    "multirun/",
    "deploy/local/state/",
    # credentials
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    "credentials",
    "credentials.*",
    "*credentials*.json",
    ".aws/",
    ".ssh/",
    ".gnupg/",
    ".docker/config.json",
    ".kube/",
    "auth_token",
]


JOB_ID_ENV = "ORCHESTRATOR_RAY_JOB_ID"


META_VERB = "orchestrator.verb"


META_TRACKING_URI = "orchestrator.tracking_uri"


NOT_SUBMITTABLE = ("submit", "jobs")


TRACKING_OVERRIDE = re.compile(r"^\+{0,2}tracking\.uri=(.*)$")


POLL_S = 1.0


@dataclass
class SubmitOptions:
    """What `orchestrate submit` was asked to do."""

    address: str | None
    wait: bool
    env_vars: dict[str, str]
    pip: list[str]
    working_dir: Path
    verb: str
    overrides: list[str]


def submission_id(verb: str) -> str:
    """A readable, unique job id: orchestrate-train-20261122-091500-3fa2c1."""
    return f"orchestrate-{verb}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def entrypoint(verb: str, overrides: list[str]) -> str:
    """The shell command the job runs on the cluster."""
    import shlex

    return shlex.join(["python", "-m", "orchestrator", verb, *overrides])


def working_dir_size(path: Path, excludes: list[str]) -> tuple[int, list[tuple[int, str]]]:
    """Bytes Ray would upload from `path` (its own traversal: excludes, .gitignore, .rayignore), and
    the biggest files. Ray zips without compression, so this is the package size within headers."""
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    include_gitignore = os.environ.get("RAY_RUNTIME_ENV_IGNORE_GITIGNORE", "0") != "1"
    sizes: list[tuple[int, str]] = []

    def handler(file: Path) -> None:
        if file.is_file():
            sizes.append((file.stat().st_size, str(file.relative_to(path))))

    _dir_travel(path, [_get_excludes(path, excludes)], handler, include_gitignore=include_gitignore)
    return sum(size for size, _ in sizes), sorted(sizes, reverse=True)[:3]


def check_upload_size(path: Path, excludes: list[str]) -> int:
    """Refuse, before packaging, a working directory over Ray's upload limit (512 MiB in Ray 2.60)."""
    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE

    total, biggest = working_dir_size(path, excludes)
    if total >= GCS_STORAGE_MAX_SIZE:
        mib = 1024 * 1024
        listing = ", ".join(f"{name} ({size / mib:.0f} MiB)" for size, name in biggest)
        raise ConfigError(
            "--working-dir",
            f"{path} holds {total / mib:.0f} MiB to upload, over Ray's limit of {GCS_STORAGE_MAX_SIZE / mib:.0f} MiB (biggest: {listing})",
            "list large files in .rayignore or .gitignore, or keep data on shared storage (s3://, NFS) and point data.path at it",
        )
    return total


def job_tracking_uri(overrides: list[str], env_vars: dict[str, str]) -> str | None:
    """The tracking URI the job will use: tracking.uri=..., else MLFLOW_TRACKING_URI of the job
    (from --env, else forwarded from here); None when neither is set."""
    for override in reversed(overrides):
        match = TRACKING_OVERRIDE.match(override)
        if match and match.group(1) not in ("", "null"):
            return match.group(1).strip("'\"")
    return env_vars.get("MLFLOW_TRACKING_URI") or None


def check_tracking_for_cluster(uri: str | None, address: str) -> list[str]:
    """Whether the job's tracking URI can work from the cluster. Raises ConfigError when it cannot;
    returns warnings when it may not."""
    from orchestrator.errors import TrackingError
    from orchestrator.tracking.store import check_reachable, sqlite_path

    fix = "set tracking.uri=http://MLFLOW_HOST:PORT (an MLflow server the cluster reaches) or MLFLOW_TRACKING_URI"
    local_cluster = is_loopback(address)
    if uri is None:
        return [
            "no tracking.uri and no MLFLOW_TRACKING_URI here: the job uses the cluster's MLFLOW_TRACKING_URI if its "
            "nodes set one, else sqlite:///mlruns.db inside the job's temporary working directory, which is lost "
            f"when the job's files are cleaned up; {fix}"
        ]
    scheme = urlsplit(uri).scheme
    if scheme == "sqlite":
        path = sqlite_path(uri) or ""
        if not path.startswith("/"):
            raise ConfigError(
                "tracking.uri",
                f"{uri} is relative: on the cluster it lands in the job's temporary working directory and is lost",
                fix + " (or an absolute sqlite:////shared/path/mlruns.db on storage every node shares)",
            )
        if not local_cluster:
            return [
                f"tracking.uri={uri} is a file on the cluster's nodes, not on this machine; unless that path is "
                f"shared storage the runs stay on the node that ran the job; {fix}"
            ]
        return []
    if scheme in ("http", "https"):
        host = urlsplit(uri).hostname or ""
        if local_cluster:
            try:
                check_reachable(uri, timeout_s=5.0)
            except TrackingError as err:
                raise ConfigError("tracking.uri", f"the cluster runs on this machine and {err}", fix) from err
            return []
        if host in LOOPBACK_HOSTS:
            return [
                f"tracking.uri={uri} points at localhost, but the cluster at {address} is another machine: the job "
                f"would look for MLflow on its own node; {fix}"
            ]
        try:
            check_reachable(uri, timeout_s=3.0)
        except TrackingError as err:
            return [f"from here, {err} (the cluster may still reach it)"]
    return []


def runtime_env(options: SubmitOptions, job_id: str) -> dict:
    """The job's runtime_env: working_dir with excludes, env vars (the job id among them), pip packages."""
    env_vars = dict(options.env_vars)
    if "MLFLOW_TRACKING_URI" not in env_vars and os.environ.get("MLFLOW_TRACKING_URI"):
        env_vars["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_TRACKING_URI"]
    env_vars[JOB_ID_ENV] = job_id
    env = {"working_dir": str(options.working_dir), "excludes": list(EXCLUDES), "env_vars": env_vars}
    if options.pip:
        env["pip"] = list(options.pip)
    return env


def follow(client, address: str, job_id: str) -> str:
    """Print the job's log as it comes until the job ends; returns its final status."""
    from orchestrator.jobs.client import TERMINAL_STATUSES, cluster_errors, job_info

    with cluster_errors(address, job_id):
        asyncio.run(_tail(client, job_id))
    # The log stream closes when the driver exits; the status follows a moment later.
    deadline = time.monotonic() + 60
    while True:
        info = job_info(client, address, job_id)
        if str(info.status) in TERMINAL_STATUSES or time.monotonic() > deadline:
            return str(info.status)
        time.sleep(POLL_S)


def run_submit(options: SubmitOptions) -> int:
    """Check, submit, and (unless --no-wait) follow. Returns the process exit code."""
    from rich.markup import escape

    from orchestrator.console import console, print_warning
    from orchestrator.jobs.client import connect, job_info, with_job_agent
    from orchestrator.tracking.store import mask_uri, runs_of_jobs

    client, address = connect(options.address)  # fails in seconds on a wrong address or token
    job_id = submission_id(options.verb)
    env = runtime_env(options, job_id)
    uri = job_tracking_uri(options.overrides, env["env_vars"])
    for warning in check_tracking_for_cluster(uri, address):
        print_warning(warning)
    size = check_upload_size(options.working_dir, env["excludes"])
    command = entrypoint(options.verb, options.overrides)
    metadata = {META_VERB: options.verb}
    if uri:
        metadata[META_TRACKING_URI] = mask_uri(uri)
    with_job_agent(address, lambda: client.submit_job(entrypoint=command, submission_id=job_id, runtime_env=env, metadata=metadata))
    console.print(f"submitted job [bold]{job_id}[/] to {escape(address)} ({size / 1024:.0f} KiB of {escape(str(options.working_dir))})")
    console.print(f"  entrypoint: {escape(command)}")
    if not options.wait:
        console.print(f"  follow: orchestrate jobs logs --follow {job_id} --address {address}")
        console.print(f"  stop:   orchestrate jobs stop {job_id} --address {address}")
        console.out(job_id)  # alone on the last line, for scripts: JOB=$(orchestrate submit --no-wait ... | tail -1)
        return 0
    try:
        status = follow(client, address, job_id)
    except KeyboardInterrupt:
        print_warning(f"stopped following; the job keeps running: orchestrate jobs stop {job_id} --address {address}")
        return 130
    info = job_info(client, address, job_id)
    console.print(f"job [bold]{job_id}[/] {status}" + (f": {escape(info.message)}" if status != "SUCCEEDED" and info.message else ""))
    if uri and urlsplit(uri).scheme in ("http", "https", "sqlite"):
        try:
            runs = runs_of_jobs(uri, [job_id])[job_id]
        except Exception as err:  # noqa: BLE001 (a store we cannot read from here only loses the hint)
            log.debug("could not look up the runs of %s in %s: %s", job_id, mask_uri(uri), err)
            runs = []
        if runs:
            console.print(f"MLflow run(s) of the job: {', '.join(runs)}  ({mask_uri(uri)})")
    return 0 if status == "SUCCEEDED" else 1


async def _tail(client, job_id: str) -> None:
    from orchestrator.console import print_raw

    async for lines in client.tail_job_logs(job_id):
        print_raw(lines)
