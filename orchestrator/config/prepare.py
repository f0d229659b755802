"""Everything a run's config passes before Ray starts: the schema, the plain resolved config that
travels to the workers, the tracking store, the resources, and the objects it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def resolved_config(cfg: DictConfig, overrides: list[str] | None = None) -> dict[str, Any]:
    """The plain, resolved config that travels to the workers (never a DictConfig). `overrides`: what
    the user wrote (default: the running Hydra app's), so that a class named by `data._target_=` or
    `model._target_=` does not receive the default group's keys it does not take."""
    from orchestrator.config.build import (
        command_line_overrides,
        drop_unwritten_keys,
        written_keys,
    )

    config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    config.pop("hydra", None)
    written = written_keys(command_line_overrides() if overrides is None else overrides)
    return absolute_local_paths(drop_unwritten_keys(config, written))


# Local files named relative to the driver's working directory (`data.path=reviews.csv`). Ray workers run
# in another directory, so these travel as absolute paths. `data.tokenizer` only when it is a folder here
# (otherwise it is a level such as `word`).
LOCAL_PATH_KEYS = {"data": ("path", "cache_dir", "tokenizer"), "model": ("path",)}


def absolute_local_paths(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with the relative local paths of LOCAL_PATH_KEYS made absolute (URIs left alone)."""
    for group, keys in LOCAL_PATH_KEYS.items():
        node = config.get(group)
        for key in keys if isinstance(node, dict) else ():
            value = node.get(key)
            if not isinstance(value, str) or not value or "://" in value or Path(value).expanduser().is_absolute():
                continue
            if key == "tokenizer" and not Path(value).exists():
                continue
            node[key] = str(Path(value).expanduser().resolve())
    return config


def prepare(cfg: DictConfig, buildable: bool = True):
    """Everything checked before Ray starts: schema, tracking store, resources and (`buildable`) the
    objects the config names. Returns (typed config, plain config, tracking URI)."""
    from orchestrator.config.build import check_buildable
    from orchestrator.config.schema import validate
    from orchestrator.tracking.store import check_reachable, resolve_uri

    typed = validate(cfg)
    config = resolved_config(cfg)
    uri = resolve_uri(typed.tracking.uri)
    check_reachable(uri, typed.tracking.timeout_s)
    check_embedded_fits(typed)
    if buildable:
        check_buildable(config)  # last: it imports the trainers and Lightning
    return typed, config, uri


def check_embedded_fits(typed) -> None:
    """An embedded Ray's CPUs are known before it starts: refuse too many workers in seconds, not after
    Ray is up (a cluster to join, GPUs and scaling.wait_for_resources are checked once connected)."""
    from orchestrator.runtime.cluster import check_fits, embedded_cpus

    cpus = embedded_cpus(typed.cluster)
    if cpus is not None and not typed.scaling.use_gpu and not typed.scaling.wait_for_resources:
        check_fits(*worker_request(typed.scaling), resources={"CPU": cpus})


def worker_request(scaling) -> tuple[int, int, bool]:
    """(workers at least, CPUs per worker, GPUs or not) of `scaling`: what the cluster must hold."""
    return scaling.min_workers or scaling.num_workers, scaling.cpus_per_worker, scaling.use_gpu


def prepare_compression(cfg: DictConfig, schema: type):
    """Schema (with compression.*) and tracking store, checked before Ray starts.
    Returns (typed config, plain resolved config, tracking URI)."""
    from orchestrator.config.prepare import check_embedded_fits, resolved_config
    from orchestrator.config.schema import validate
    from orchestrator.tracking.store import check_reachable, resolve_uri

    typed = validate(cfg, schema)
    config = resolved_config(cfg)
    uri = resolve_uri(typed.tracking.uri)
    check_reachable(uri, typed.tracking.timeout_s)
    check_embedded_fits(typed)
    return typed, config, uri


def training_part(config: dict[str, Any]) -> dict[str, Any]:
    """The keys of the config that `orchestrate train` knows."""
    from orchestrator.config.schema import TrainConfig

    return {k: v for k, v in config.items() if k in TrainConfig.__dataclass_fields__}
