"""ArrayDataModule: the shared base of every in-memory (features, labels) DataModule."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from trainers.data.splits import SplitDataModule
from trainers.errors import SettingError


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise SettingError(name, f"must be in (0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise SettingError("data.val_fraction", f"+ data.test_fraction must be < 1, got {val_fraction + test_fraction}")


class ArrayDataModule(SplitDataModule):
    """Splits (features, labels) arrays into stratified train/val/test by seed and standardises
    features with statistics fitted on the training split only.

    Subclasses implement `load_arrays()` returning `(features float32 [N, ...], labels int64 [N])`.

    Args:
        batch_size: samples per batch on each worker.
        val_fraction: share of samples held out for validation.
        test_fraction: share of samples held out for the test split.
        seed: seed of the split (the same seed gives the same split on every worker).
        num_loader_workers: DataLoader worker processes (0 loads in the training process).
        standardize: fit mean/std on the training split and apply them to every split.
    """

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        seed: int = 0,
        num_loader_workers: int = 0,
        standardize: bool = True,
    ):
        super().__init__()
        if batch_size <= 0:
            raise SettingError("data.batch_size", f"must be a positive integer, got {batch_size}")
        check_split_fractions(val_fraction, test_fraction)
        if num_loader_workers < 0:
            raise SettingError("data.num_loader_workers", f"must be >= 0, got {num_loader_workers}")
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.num_loader_workers = num_loader_workers
        self.standardize = standardize
        self.splits: dict[str, TensorDataset] = {}

    # -- to implement ---------------------------------------------------------------------------
    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        raise NotImplementedError

    # -- Lightning hooks ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        features, labels = self.load_arrays()
        indices = np.arange(len(labels))
        train_idx, test_idx = train_test_split(indices, test_size=self.test_fraction, stratify=labels, random_state=self.seed)
        val_share = self.val_fraction / (1.0 - self.test_fraction)
        train_idx, val_idx = train_test_split(train_idx, test_size=val_share, stratify=labels[train_idx], random_state=self.seed)
        features = features.astype(np.float32)
        if self.standardize:
            # Statistics from the training split only, so nothing leaks from val/test.
            mean = features[train_idx].mean(axis=0, keepdims=True)
            std = features[train_idx].std(axis=0, keepdims=True)
            features = (features - mean) / np.where(std > 1e-8, std, 1.0)
        x = torch.from_numpy(np.ascontiguousarray(features))
        y = torch.from_numpy(labels.astype(np.int64))
        for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
            idx_t = torch.from_numpy(np.sort(idx))
            self.splits[name] = TensorDataset(x[idx_t], y[idx_t])
