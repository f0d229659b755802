"""The hash split of a streamed dataset (streams.split_of) is a pure function of each row, and a run's params and
config hash leave out data.stats (found by the run, not chosen). No Ray."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestrator.data.streams import TEST, TRAIN, VAL, split_of
from orchestrator.tracking.runs import run_params
from orchestrator.tracking.store import config_hash

KEYS = ["f0", "f1", "label"]


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {"rid": np.arange(rows) * 7 + 3, "f0": rng.normal(size=rows), "f1": rng.integers(0, 1000, size=rows)}
    return pd.DataFrame({**columns, "label": rng.integers(0, 3, size=rows)})


def test_the_split_is_deterministic():
    data = frame(2000)
    first = split_of(data, KEYS, seed=3, val_fraction=0.15, test_fraction=0.2)
    assert first.dtype == np.int8 and len(first) == 2000
    assert set(np.unique(first)) == {TRAIN, VAL, TEST}
    assert np.array_equal(first, split_of(data.copy(), KEYS, seed=3, val_fraction=0.15, test_fraction=0.2))


@pytest.mark.parametrize(
    "keys",
    [
        KEYS,  # numeric features and label: pandas' hash key would not reach them, the seed must
        ["rid"],
        ["f0", "f1", "name"],
    ],
)
def test_another_seed_gives_another_split(keys):
    data = frame(2000).assign(name=lambda f: "row-" + f["rid"].astype(str))
    base = split_of(data, keys, seed=0, val_fraction=0.15, test_fraction=0.2)
    for seed in (1, 42, 123456789):
        other = split_of(data, keys, seed=seed, val_fraction=0.15, test_fraction=0.2)
        assert (other != base).mean() > 0.2, seed  # independent splits of these shares differ on ~50% of rows


def test_the_split_is_per_row_whatever_the_chunks_or_order():
    data = frame(3000)
    whole = split_of(data, KEYS, seed=5, val_fraction=0.2, test_fraction=0.1)
    for chunks in (2, 7, 64, 301):
        pieces = np.array_split(np.arange(len(data)), chunks)
        chunked = np.concatenate([split_of(data.iloc[rows].reset_index(drop=True), KEYS, 5, 0.2, 0.1) for rows in pieces])
        assert np.array_equal(chunked, whole), chunks
    order = np.random.default_rng(1).permutation(len(data))
    shuffled = split_of(data.iloc[order].reset_index(drop=True), KEYS, 5, 0.2, 0.1)
    back = np.empty_like(shuffled)
    back[order] = shuffled
    assert np.array_equal(back, whole)


def test_the_index_and_other_columns_do_not_matter():
    data = frame(1000)
    base = split_of(data, KEYS, 9, 0.15, 0.2)
    assert np.array_equal(split_of(data.set_axis(np.arange(1000) * 13 + 5), KEYS, 9, 0.15, 0.2), base)
    assert np.array_equal(split_of(data.assign(extra="x", rid=0), KEYS, 9, 0.15, 0.2), base)
    assert np.array_equal(split_of(data[["label", "f1", "f0"]], KEYS, 9, 0.15, 0.2), base)


@pytest.mark.parametrize("val_fraction, test_fraction", [(0.15, 0.2), (0.1, 0.1), (0.3, 0.05), (0.0, 0.25), (0.25, 0.0)])
def test_shares_are_close_to_the_fractions(val_fraction, test_fraction):
    split = split_of(frame(20_000), KEYS, seed=11, val_fraction=val_fraction, test_fraction=test_fraction)
    assert abs((split == VAL).mean() - val_fraction) < 0.02
    assert abs((split == TEST).mean() - test_fraction) < 0.02
    assert abs((split == TRAIN).mean() - (1 - val_fraction - test_fraction)) < 0.02


def test_a_zero_fraction_gives_no_rows():
    data = frame(5000)
    no_val = split_of(data, KEYS, 2, val_fraction=0.0, test_fraction=0.3)
    assert not (no_val == VAL).any() and (no_val == TEST).any() and (no_val == TRAIN).any()
    no_test = split_of(data, KEYS, 2, val_fraction=0.3, test_fraction=0.0)
    assert not (no_test == TEST).any() and (no_test == VAL).any()
    assert (split_of(data, KEYS, 2, 0.0, 0.0) == TRAIN).all()


def test_the_test_split_keeps_its_rows_when_the_val_fraction_changes():
    data = frame(5000)
    small, large = split_of(data, KEYS, 4, 0.1, 0.2), split_of(data, KEYS, 4, 0.3, 0.2)
    assert np.array_equal(small == TEST, large == TEST)
    assert ((small == VAL) <= (large == VAL)).all()  # a larger val share only takes rows from train


def test_identical_rows_share_a_split():
    distinct = frame(1000)
    doubled = pd.concat([distinct, distinct.sample(frac=1.0, random_state=0)], ignore_index=True).drop(columns="rid")
    split = split_of(doubled, KEYS, 6, 0.3, 0.3)
    first = split[:1000]
    second = pd.Series(split[1000:], index=distinct.sample(frac=1.0, random_state=0).index).sort_index().to_numpy()
    assert np.array_equal(first, second)
    assert len(np.unique(first)) == 3  # not trivially one split


def test_an_id_column_decides_the_split_alone():
    data = frame(2000)
    by_id = split_of(data, ["rid"], 8, 0.2, 0.2)
    changed = data.assign(f0=data["f0"] + 1.0, label=(data["label"] + 1) % 3)  # other contents, the same ids
    assert np.array_equal(split_of(changed, ["rid"], 8, 0.2, 0.2), by_id)
    by_row = split_of(data, KEYS, 8, 0.2, 0.2)
    assert not np.array_equal(split_of(changed, KEYS, 8, 0.2, 0.2), by_row)  # hashed whole, the rows' split moves
    repeated = pd.DataFrame({"rid": np.repeat(data["rid"].to_numpy()[:200], 3), "f0": np.arange(600.0)})
    grouped = split_of(repeated, ["rid"], 8, 0.2, 0.2).reshape(200, 3)
    assert (grouped == grouped[:, :1]).all()  # rows sharing an id share a split
    assert np.array_equal(grouped[:, 0], by_id[:200])


# -- data.stats is not a param -------------------------------------------------------------------

STATS = {
    "rows": {"train": 650, "val": 150, "test": 200},
    "classes": [0, 1, 2],
    "class_counts": [300, 400, 300],
    "mean": [0.1, -2.5, 7.0],
    "std": [1.0, 0.5, 3.2],
}


def config(stats: dict | None = None, batch_size: int = 64) -> dict:
    data = {"_target_": "orchestrator.data.module.StreamingDataModule", "path": "s3://bucket/events/", "batch_size": batch_size}
    if stats is not None:
        data["stats"] = stats
    return {"seed": 0, "data": data, "model": {"hidden_dims": [64, 32]}, "paths": {"output_dir": "/runs/1"}}


def test_run_params_leave_out_data_stats():
    params = run_params(config(STATS))
    assert not [key for key in params if key.startswith("data.stats")]
    assert params["data.path"] == "s3://bucket/events/" and params["data.batch_size"] == "64"
    assert params["model.hidden_dims"] == "[64, 32]"
    assert params == run_params(config())


def test_config_hash_ignores_data_stats():
    assert config_hash(config(STATS)) == config_hash(config())
    assert config_hash(config({**STATS, "mean": [9.0, 9.0, 9.0]})) == config_hash(config())
    assert config_hash(config(STATS, batch_size=32)) != config_hash(config(STATS))  # what is chosen still counts
