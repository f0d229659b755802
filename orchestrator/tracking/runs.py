"""Opening a run, the same way for train, pipeline, compress and sweeps: its tags (run_tags), its params
(the config flattened with dotted keys, secrets masked, values cut to MLflow's limit), and `config.yaml`.

Params are what the user chose. What differs in every run by construction (its Hydra output folder) is a
tag, so MLflow's compare view shows real differences only."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from orchestrator.tracking.store import chosen, flatten, mask_secrets, run_tags
from orchestrator.tracking.tags import TAG_ERROR, TAG_OUTPUT_DIR, TAG_PARENT

MAX_PARAM_LENGTH = 6000  # MLflow's limit on one param value
# Flattened keys that differ in every run by construction: tags, not params.
PER_RUN_KEYS = {"paths.output_dir": TAG_OUTPUT_DIR}
PARAMS_PER_BATCH = 100  # MLflow's limit on the params of one log_batch
# Where runs ran and were tracked, not what they trained: never "a param that differs".
WHERE_PARAMS = ("paths.", "tracking.", "cluster.")


def run_params(config: dict[str, Any]) -> dict[str, str]:
    """The params of a run of `config`: flattened with dotted keys, secrets masked, cut to MLflow's limit,
    without PER_RUN_KEYS and what the run found (store.chosen)."""
    flat = flatten(mask_secrets(chosen(config)))
    return {key: value[:MAX_PARAM_LENGTH] for key, value in flat.items() if key not in PER_RUN_KEYS}


def differing_params(params: list[dict[str, str]]) -> list[str]:
    """The param keys whose values differ between runs (each a dict of params as MLflow stores them),
    sorted, without WHERE_PARAMS: what a sweep swept, what `compare` shows."""
    keys = sorted(set().union(*params)) if params else []
    return [k for k in keys if not k.startswith(WHERE_PARAMS) and len({p.get(k) for p in params}) > 1]


def opening_tags(kind: str, config: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, str]:
    """run_tags plus the per-run values of PER_RUN_KEYS."""
    flat = flatten(config)
    per_run = {tag: flat[key] for key, tag in PER_RUN_KEYS.items() if flat.get(key) not in (None, "None")}
    return {**run_tags(kind, config, extra), **per_run}


def config_yaml(config: dict[str, Any]) -> str:
    """The run's `config.yaml`: the whole resolved config, secrets masked."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(mask_secrets(config))


def log_config(client, run_id: str, config: dict[str, Any] | None, params: dict[str, str] | None = None) -> None:
    """Log run_params(config) (or `params`, already made) in batches, and `config.yaml` when `config` is given."""
    from mlflow.entities import Param

    items = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in (run_params(config) if params is None else params).items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + PARAMS_PER_BATCH])
    if config is not None:
        client.log_text(run_id, config_yaml(config), "config.yaml")


@contextmanager
def open_run(
    tracking_uri: str,
    experiment_id: str,
    run_name: str | None,
    kind: str,
    config: dict[str, Any],
    extra_tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
):
    """Yield the id of a new run of `config` (created with the client, not the fluent API, so that runs
    beneath it can each be the active fluent run); it ends FINISHED, FAILED (with TAG_ERROR) or KILLED by
    how the block ends, never RUNNING."""
    from mlflow import MlflowClient

    from orchestrator.errors import RunInterrupted

    client = MlflowClient(tracking_uri)
    tags = opening_tags(kind, config, extra_tags)
    if parent_run_id:
        tags[TAG_PARENT] = parent_run_id
    run_id = client.create_run(experiment_id, tags=tags, run_name=run_name).info.run_id
    status = "FAILED"
    try:
        log_config(client, run_id, config)
        yield run_id
        status = "FINISHED"
    except (KeyboardInterrupt, RunInterrupted):
        status = "KILLED"
        raise
    except Exception as err:
        client.set_tag(run_id, TAG_ERROR, f"{err.__class__.__name__}: {err}"[:5000])
        raise
    finally:
        client.set_terminated(run_id, status)
