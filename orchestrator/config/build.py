"""Build the DataModule, LitModule and callbacks of a run from its plain resolved config.

Used on the driver (to check the config before Ray starts, and to evaluate the trained model) and on
every worker, so both build exactly the same objects.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, get_object, instantiate

from orchestrator.errors import ConfigError
from trainers.errors import SettingError

log = logging.getLogger(__name__)

# What the orchestrator supplies to a LitModule whose constructor asks for it.
SUPPLIED_MODEL_ARGS = ("input_shape", "num_classes", "vocab_size", "pad_token_id", "optimizer", "scheduler")
# Of those, what the DataModule itself provides (text DataModules add their tokenizer's vocab_size and pad id).
DATAMODULE_ARGS = ("input_shape", "num_classes", "vocab_size", "pad_token_id")


def _config_error(group: str, err: Exception) -> ConfigError:
    """Turn a failed instantiate into a ConfigError that names the key."""
    cause = err.__cause__ or err
    message = str(cause)
    if isinstance(err, InstantiationException) and "Error locating target" in str(err):
        return ConfigError(
            f"{group}._target_",
            str(err).split("\n")[0],
            "check the spelling, and that the module is importable from the working directory",
        )
    if isinstance(cause, TypeError) and "unexpected keyword argument" in message:
        bad = message.rsplit("'", 2)[-2] if message.count("'") >= 2 else message
        return ConfigError(f"{group}.{bad}", "is not an argument of this " + group, "remove it or check its spelling")
    if isinstance(cause, SettingError):  # the trainers' constructors name the key (a model may name a data key)
        return ConfigError(cause.key, cause.problem, cause.fix)
    return ConfigError(group, message)


def locate_target(group: str, node: dict, any_callable: bool = False) -> type:
    """The class (`any_callable`: or function) named by `node._target_`, or a ConfigError naming
    `<group>._target_`."""
    target = node.get("_target_")
    try:
        return get_object(target) if any_callable else get_class(target)
    except Exception as err:  # ImportError, AttributeError, ValueError from Hydra's locate
        raise ConfigError(
            f"{group}._target_",
            f"cannot import {target!r} ({err.__class__.__name__}: {str(err).splitlines()[0]})",
            "check the spelling, and that the module is importable from the working directory",
        ) from err


def constructor_args(group: str, node: dict) -> tuple[set[str], bool]:
    """(the argument names of the constructor of `node`'s class, whether it also takes **kwargs)."""
    parameters = inspect.signature(locate_target(group, node).__init__).parameters
    return set(parameters), any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def written_keys(overrides: list[str]) -> set[str]:
    """The dotted keys a user wrote on the command line (`data._target_=x`, `+data.k=v`, `~model.k`),
    each as `<group>.<key>` (deeper keys cut to their first two parts)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {".".join(o.key_or_group.split(".")[:2]) for o in parsed if "." in o.key_or_group}


def command_line_overrides() -> list[str]:
    """The overrides of the running Hydra app (its task overrides), or none outside one."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def drop_unwritten_keys(config: dict[str, Any], written: set[str]) -> dict[str, Any]:
    """`config` without the data/model keys that the class named on the command line does not take and
    the user did not write.

    `data._target_=pkg.MyData` replaces only the class of the default group (`data=digits`): that group's
    other keys (`val_fraction`, `seed`, ...) stay in the node and were written for another class. They
    are dropped, with one line saying which; keys the user wrote are kept, so a wrong one is still refused
    by name when the class is built. A class taking `**kwargs` keeps every key.
    """
    for group in ("data", "model"):
        node = config.get(group)
        if not isinstance(node, dict) or f"{group}._target_" not in written:
            continue
        accepted, takes_kwargs = constructor_args(group, node)
        if takes_kwargs:
            continue
        unused = [k for k in node if not k.startswith("_") and k not in accepted and f"{group}.{k}" not in written]
        for key in unused:
            del node[key]
        if unused:
            log.info(
                "%s._target_=%s does not take %s (from the default %s group): left out",
                group,
                node["_target_"],
                ", ".join(f"{group}.{k}" for k in unused),
                group,
            )
    return config


def build_datamodule(config: dict[str, Any]):
    """The LightningDataModule of `config["data"]`."""
    locate_target("data", config["data"])
    try:
        return instantiate(config["data"])
    except (InstantiationException, TypeError, ValueError) as err:
        raise _config_error("data", err) from err


def _datamodule_value(datamodule, name: str):
    """`datamodule.<name>`, or None if it has none. A DataModule that reads its data lazily (text ones
    tokenise on first use) raises here: its error names a data key."""
    try:
        return getattr(datamodule, name, None)
    except (TypeError, ValueError) as err:
        raise _config_error("data", err) from err


def _missing_args(model_node: dict[str, Any]) -> list[str]:
    """The SUPPLIED_MODEL_ARGS that the constructor of `model_node`'s class takes and the node does not set."""
    accepted, takes_kwargs = constructor_args("model", model_node)
    return [name for name in SUPPLIED_MODEL_ARGS if (name in accepted or takes_kwargs) and name not in model_node]


def datamodule_args(model_node: dict[str, Any], datamodule) -> dict[str, Any]:
    """What the DataModule supplies to the model of `model_node` (DATAMODULE_ARGS it takes and does not
    set): `input_shape` as a tuple, `num_classes`, and a text DataModule's `vocab_size` and `pad_token_id`."""
    supplied: dict[str, Any] = {}
    for name in _missing_args(model_node):
        if name in DATAMODULE_ARGS and (value := _datamodule_value(datamodule, name)) is not None:
            supplied[name] = tuple(value) if name == "input_shape" else value
    return supplied


def build_model(config: dict[str, Any], datamodule):
    """The LightningModule of `config["model"]`, given what its constructor asks for.

    `input_shape`, `num_classes`, `vocab_size` and `pad_token_id` come from the DataModule (when it has
    them); `optimizer` and `scheduler` are the partials of `config["optimizer"]` / `config["scheduler"]`.
    """
    supplied = datamodule_args(config["model"], datamodule)
    missing = _missing_args(config["model"])
    if "optimizer" in missing:
        supplied["optimizer"] = instantiate(config["optimizer"])
    if "scheduler" in missing and config.get("scheduler"):
        supplied["scheduler"] = instantiate(config["scheduler"])
    try:
        return instantiate(config["model"], **supplied)
    except (InstantiationException, TypeError, ValueError) as err:
        raise _config_error("model", err) from err


def build_callbacks(config: dict[str, Any]) -> list:
    """The Lightning callbacks of `config["callbacks"]`: every entry with a `_target_`."""
    callbacks = []
    for name, node in (config.get("callbacks") or {}).items():
        if isinstance(node, dict) and "_target_" in node:
            try:
                callbacks.append(instantiate(node))
            except (InstantiationException, TypeError, ValueError) as err:
                raise _config_error(f"callbacks.{name}", err) from err
    return callbacks


def streams_data(config: dict[str, Any]) -> bool:
    """The run's DataModule streams through Ray Data (data=parquet) rather than loading its own data."""
    from orchestrator.data.module import StreamingDataModule

    return issubclass(locate_target("data", config["data"]), StreamingDataModule)


def check_buildable(config: dict[str, Any]):
    """Build the DataModule, the LitModule and the callbacks once on the driver, so a bad `_target_`
    or argument fails before Ray starts. Returns (datamodule, model)."""
    datamodule = build_datamodule(config)
    instantiate(config["optimizer"])
    if config.get("scheduler"):
        locate_target("scheduler", config["scheduler"], any_callable=True)  # a class, or a function (linear_warmup)
    if getattr(datamodule, "stats_known", True) is False:
        # a streamed dataset's classes are counted on the cluster once Ray is up (training.run.prepare_streamed_data):
        # until then the checks build the model with a stand-in number of classes
        datamodule.checking = True
    model = build_model(config, datamodule)
    build_callbacks(config)
    return datamodule, model
