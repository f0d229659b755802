"""MLflow on the driver: where the store is, whether it answers, and what every run carries.

The run contract (docs/architecture.md): one run per logical run, params = the resolved config flattened
with dotted keys (secrets masked), tags `orchestrator.kind`, `orchestrator.config_hash` and the git commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from orchestrator.errors import ConfigError, TrackingError
from orchestrator.tracking.tags import (
    TAG_CONFIG_HASH,
    TAG_GIT_COMMIT,
    TAG_KIND,
    TAG_RAY_JOB_ID,
)

DEFAULT_DB = "mlruns.db"
SQLITE_PREFIX = "sqlite:///"
# Keys whose values never reach MLflow or config.yaml in clear.
# `token$`, not `token`: data.tokenizer, pad_token_id and max_new_tokens are settings, not secrets.
SECRET_KEY = re.compile(r"(password|passwd|secret|token$|credential|api_?key|access_?key|private_?key|(^|[._])key$)", re.I)
MASK = "*****"
# Groups that say where things run and are tracked, not what is trained: left out of the config hash.
UNHASHED_GROUPS = ("tracking", "paths", "cluster", "hydra")


def sqlite_path(uri: str) -> str | None:
    """The file of a `sqlite:///PATH` tracking URI (relative unless PATH starts with /), else None."""
    return uri[len(SQLITE_PREFIX) :] if uri.startswith(SQLITE_PREFIX) else None


def resolve_uri(uri: str | None, cwd: Path | None = None) -> str:
    """The tracking URI to use: `uri`, else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlruns.db.

    Relative SQLite paths are made absolute, because Ray workers run in other directories.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"
    cwd = cwd or Path.cwd()
    path = sqlite_path(uri)
    if path is not None:
        if not path.startswith("/"):
            return f"sqlite:///{(cwd / path).resolve()}"
        return uri
    if "://" not in uri:
        raise ConfigError(
            "tracking.uri",
            f"{uri!r} is not a URI the orchestrator accepts",
            "use sqlite:///path/to/mlruns.db or http(s)://host:port (the plain file store is refused by MLflow 3)",
        )
    return uri


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast, naming tracking.uri, when the store cannot be used."""
    scheme = urlsplit(uri).scheme
    if scheme == "sqlite":
        parent = Path(sqlite_path(uri)).parent
        if not parent.is_dir():
            raise ConfigError(
                "tracking.uri", f"the folder of the SQLite file does not exist: {parent}", "create it or point tracking.uri elsewhere"
            )
        if not os.access(parent, os.W_OK):
            raise ConfigError("tracking.uri", f"the folder of the SQLite file is not writable: {parent}")
        return
    if scheme in ("http", "https"):
        health = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(health, timeout=timeout_s) as response:  # noqa: S310 (URI from config)
                if response.status == 200:
                    return
                problem = f"answered {response.status} at {mask_uri(health)}"
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                return  # the server is up; credentials are checked when the run is created
            problem = f"answered {err.code} at {mask_uri(health)}"
        except (urllib.error.URLError, OSError) as err:
            problem = f"no MLflow server answered at {mask_uri(uri)} within {timeout_s:g} s ({getattr(err, 'reason', err)})"
        raise TrackingError(f"tracking.uri: {problem}; start the server or set tracking.uri (or MLFLOW_TRACKING_URI)")
    # databricks, postgresql+..., file: left to MLflow itself.


def mask_uri(uri: str) -> str:
    """Hide the password in user:password@host URIs."""
    parts = urlsplit(uri)
    if parts.password:
        netloc = f"{parts.username}:{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def mask_secrets(config: Any, key: str = "") -> Any:
    """A copy of a plain config with secret-looking values masked (and passwords in URIs hidden)."""
    if isinstance(config, dict):
        return {k: mask_secrets(v, f"{key}.{k}" if key else str(k)) for k, v in config.items()}
    if isinstance(config, list):
        return [mask_secrets(v, key) for v in config]
    if config is not None and SECRET_KEY.search(key.rsplit(".", 1)[-1]):
        return MASK
    if isinstance(config, str) and "://" in config:
        return mask_uri(config)
    return config


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """`{"model": {"hidden_dim": 64}}` -> `{"model.hidden_dim": "64"}`."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return flat


def chosen(config: dict) -> dict:
    """`config` without what the run found rather than the user chose: a streamed dataset's statistics,
    `data.stats` (config.yaml keeps them, the run's inputs show them; neither params nor hashed)."""
    data = config.get("data")
    if isinstance(data, dict) and "stats" in data:
        return {**config, "data": {k: v for k, v in data.items() if k != "stats"}}
    return config


def config_hash(config: dict) -> str:
    """A stable hash of what is trained (not where it runs or is tracked, nor what the run found)."""
    hashed = {k: v for k, v in chosen(config).items() if k not in UNHASHED_GROUPS}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the user's working directory, else of the orchestrator's source, if either is git."""
    for folder in (cwd or Path.cwd(), Path(__file__).resolve().parent):
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode == 0:
            return out.stdout.strip()
    return None


def ray_job_id() -> str | None:
    """The submission id of the Ray job this process belongs to, if any.

    Ray 2.60 gives a job's driver the id only inside RAY_JOB_CONFIG_JSON_ENV_VAR (metadata
    `job_submission_id`) and strips RAY_JOB_ID, which in workers is the internal hex id ("02000000"),
    not the submission id. `orchestrate submit` also sets ORCHESTRATOR_RAY_JOB_ID in the job's
    runtime_env, which reaches every task and actor of the job.
    """
    job_id = os.environ.get("ORCHESTRATOR_RAY_JOB_ID")
    if job_id:
        return job_id
    try:
        job_config = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}")
    except ValueError:
        return None
    return (job_config.get("metadata") or {}).get("job_submission_id") or None


def runs_of_jobs(uri: str, job_ids: list[str]) -> dict[str, list[str]]:
    """The MLflow run ids tagged with each of `job_ids` (ray.job_id) in the store at `uri`."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    found: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
    if not experiments:
        return found
    runs = client.search_runs(
        experiments, filter_string=f"tags.`{TAG_RAY_JOB_ID}` LIKE '%'", max_results=5000, order_by=["attributes.start_time ASC"]
    )
    for run in runs:
        job_id = run.data.tags.get(TAG_RAY_JOB_ID)
        if job_id in found:
            found[job_id].append(run.info.run_id)
    return found


def run_tags(kind: str, config: dict, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The tags every run of the orchestrator carries."""
    tags = {TAG_KIND: kind, TAG_CONFIG_HASH: config_hash(config)}
    commit = git_commit()
    if commit:
        tags[TAG_GIT_COMMIT] = commit
    job_id = ray_job_id()
    if job_id:
        tags[TAG_RAY_JOB_ID] = job_id
    tags.update(extra or {})
    return tags


def experiment_id(client, name: str) -> str:
    """The id of experiment `name`, created when missing."""
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(name)
    except Exception as err:  # MlflowException, connection errors: all mean the store refused us
        raise TrackingError(f"tracking.experiment {name!r}: the tracking store refused it: {err}") from err


def set_tag_once(client, run_id: str, key: str, value: str) -> None:
    """client.set_tag, when another process may set the same tag at the same moment (a stopped Tune
    trial records its early stop as the sweeper settles it): on SQLite one insert then fails."""
    from mlflow.exceptions import MlflowException

    try:
        client.set_tag(run_id, key, value)
    except MlflowException:
        if client.get_run(run_id).data.tags.get(key) != value:
            raise
