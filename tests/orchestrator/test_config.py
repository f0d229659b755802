"""The config tree composes, every group option builds, and bad values fail before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError
from text_samples import option_overrides

from orchestrator.config.build import check_buildable
from orchestrator.config.conf_dir import CONF_DIR
from orchestrator.config.prepare import prepare, resolved_config
from orchestrator.config.schema import validate
from orchestrator.errors import ConfigError

GROUP_OPTIONS = {
    group: sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))
    for group in ("data", "model", "optimizer", "scheduler", "callbacks", "experiment", "debug")
}


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "table.csv"
    pd.DataFrame({"a": range(40), "b": range(40), "label": [0, 1] * 20}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("group, option", [(g, o) for g, opts in GROUP_OPTIONS.items() for o in opts])
def test_every_group_option_composes_validates_and_builds(compose_train, group, option, table, tmp_path):
    overrides = [f"{group}={option}", *option_overrides(group, option, tmp_path)]
    if (group, option) == ("data", "csv"):
        overrides.append(f"data.path={table}")
    if (group, option) == ("data", "parquet"):  # a folder of Parquet files, streamed: checked without reading rows
        (tmp_path / "parquet").mkdir()
        pd.read_csv(table).to_parquet(tmp_path / "parquet" / "part-0.parquet", index=False)
        overrides.append(f"data.path={tmp_path / 'parquet'}")
    if (group, option) == ("model", "cnn"):
        overrides.append("data=digits")
    cfg = compose_train(*overrides)
    validate(cfg)
    datamodule, model = check_buildable(resolved_config(cfg))
    assert getattr(datamodule, "num_classes", 2) >= 2  # language-model data has none
    assert sum(p.numel() for p in model.parameters()) > 0


def test_debug_fast_runs_one_batch_of_each_loop(compose_train):
    trainer = compose_train("debug=fast").trainer
    assert (trainer.max_epochs, trainer.limit_train_batches, trainer.limit_val_batches, trainer.limit_test_batches) == (1, 1, 1, 1)


def test_experiment_overlay_overrides_groups(compose_train):
    cfg = compose_train("experiment=digits_cnn")
    assert cfg.model._target_.endswith("CNNClassifierLitModule")
    assert cfg.scheduler._target_.endswith("CosineAnnealingLR") and cfg.scheduler.T_max == 15


@pytest.mark.parametrize(
    "override, key",
    [
        ("optimizer.lr=-1", "optimizer.lr"),
        ("optimizer.lr=0", "optimizer.lr"),
        ("data.batch_size=0", "data.batch_size"),
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("scaling.num_workers=0", "scaling.num_workers"),
        ("scaling.cpus_per_worker=-2", "scaling.cpus_per_worker"),
        ("model.hidden_dim=-8", "model.hidden_dim"),
    ],
)
def test_non_positive_values_name_the_key(compose_train, override, key):
    with pytest.raises(ConfigError, match=rf"^{key}: must be > 0"):
        validate(compose_train(override))


def test_unknown_group_option_lists_the_choices(compose_train):
    with pytest.raises(ConfigCompositionException, match=r"(?s)Could not find 'model/no_such_model'.*mlp"):
        compose_train("model=no_such_model")


def test_typo_key_is_refused(compose_train):
    with pytest.raises(ConfigCompositionException, match="scaling.num_workrs"):
        compose_train("scaling.num_workrs=2")


def test_wrong_type_is_refused(compose_train):
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_train("scaling.num_workers=two")


def test_missing_data_path(compose_train, tmp_path):
    with pytest.raises(ConfigError, match=r"^data.path: does not exist"):
        check_buildable(resolved_config(compose_train("data=csv", f"data.path={tmp_path / 'nope.csv'}")))


def test_csv_without_label_column(compose_train, table):
    with pytest.raises(ConfigError, match=r"^data.label_column: 'target' is not a column"):
        check_buildable(resolved_config(compose_train("data=csv", f"data.path={table}", "data.label_column=target")))


def test_csv_path_left_unset_names_the_key(compose_train):
    with pytest.raises(Exception, match="data.path"):
        resolved_config(compose_train("data=csv"))


@pytest.mark.parametrize("group", ["model", "data"])
def test_unimportable_target(compose_train, group):
    with pytest.raises(ConfigError, match=rf"^{group}._target_: cannot import 'nopkg.Nothing'"):
        check_buildable(resolved_config(compose_train(f"{group}._target_=nopkg.Nothing")))


def test_unknown_argument_of_a_target_is_named(compose_train):
    with pytest.raises(ConfigError, match=r"^model.hidden_dims: is not an argument"):
        check_buildable(resolved_config(compose_train("+model.hidden_dims=3")))


def test_unreachable_tracking_uri_fails_before_ray(compose_train):
    from orchestrator.errors import TrackingError

    with pytest.raises(TrackingError, match="tracking.uri"):
        prepare(compose_train("tracking.uri=http://127.0.0.1:1", "tracking.timeout_s=2"))


def test_a_run_ended_by_early_stopping_says_when_and_why():
    from orchestrator.training.run import early_stop_reason

    config = {
        "trainer": {"max_epochs": 12, "max_steps": -1},
        "callbacks": {"early_stopping": {"_target_": "EarlyStopping", "monitor": "val/acc", "patience": 5}},
    }
    assert early_stop_reason(config, {"epoch": 6}) == "stopped at epoch 7 of 12: val/acc did not improve for 5 epochs"
    assert early_stop_reason(config, {"epoch": 11}) is None  # ran every epoch
    assert early_stop_reason({**config, "callbacks": None}, {"epoch": 6}) is None  # something else ended it
