"""The DataModules: splits, normalisation, shapes and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from trainers.data.digits import DigitsDataModule
from trainers.data.synthetic import SyntheticDataModule
from trainers.data.tabular import TabularDataModule


def test_digits_splits_are_stratified_disjoint_and_seeded():
    dm = DigitsDataModule(batch_size=32, seed=3)
    dm.setup()
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sum(sizes.values()) == 1797
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=2)
    for split in dm.splits.values():
        counts = torch.bincount(split.tensors[1], minlength=10).float()
        assert counts.min() / counts.max() > 0.8  # every class in every split, in proportion
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 8, 8) and y.dtype == torch.int64
    again = DigitsDataModule(batch_size=32, seed=3)
    again.setup()
    assert torch.equal(again.splits["test"].tensors[0], dm.splits["test"].tensors[0])
    other = DigitsDataModule(batch_size=32, seed=4)
    other.setup()
    assert not torch.equal(other.splits["test"].tensors[0], dm.splits["test"].tensors[0])


def test_normalisation_is_fitted_on_train_only():
    dm = SyntheticDataModule(num_samples=2000, num_features=5, num_classes=3, seed=0)
    dm.setup()
    train = dm.splits["train"].tensors[0]
    test = dm.splits["test"].tensors[0]
    assert torch.allclose(train.mean(0), torch.zeros(5), atol=1e-4)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(5), atol=1e-3)
    assert not torch.allclose(test.mean(0), torch.zeros(5), atol=1e-4)  # test statistics were not used


def test_synthetic_shape_from_config():
    dm = SyntheticDataModule(num_samples=500, num_features=7, num_classes=5, batch_size=16)
    assert dm.input_shape == (7,) and dm.num_classes == 5
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 7)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tabular_reads_csv_and_parquet_with_string_labels(tmp_path, suffix):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    frame["species"] = np.where(frame["a"] > 0, "yes", "no")
    path = tmp_path / f"table{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    dm = TabularDataModule(path=str(path), label_column="species", batch_size=8)
    assert dm.input_shape == (4,) and dm.num_classes == 2
    dm.setup()
    assert sum(len(s) for s in dm.splits.values()) == 300


def test_tabular_rejects_missing_file_and_missing_label(tmp_path):
    with pytest.raises(ValueError, match="^data.path: does not exist"):
        TabularDataModule(path=str(tmp_path / "nope.csv"))
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1, 2], "y": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="data.label_column: 'label' is not a column.*'x', 'y'"):
        TabularDataModule(path=str(path), label_column="label")


@pytest.mark.parametrize("kwargs, key", [({"batch_size": 0}, "data.batch_size"), ({"val_fraction": 1.5}, "data.val_fraction")])
def test_bad_loader_arguments_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        DigitsDataModule(**kwargs)
