"""SplitDataModule: the DataLoaders of a DataModule whose `setup` fills `self.splits` (train/val/test)."""

from __future__ import annotations

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset


class SplitDataModule(LightningDataModule):
    """Serves `self.splits["train" | "val" | "test"]` (filled by the subclass's `setup`) as DataLoaders.

    Subclasses set `self.splits = {}`, `self.batch_size` and `self.num_loader_workers` in `__init__`;
    predictions run on the test split.
    """

    splits: dict[str, Dataset]
    batch_size: int
    num_loader_workers: int

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_loader_workers,
            persistent_workers=self.num_loader_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def example_input(self, num_samples: int = 2) -> torch.Tensor:
        """A few real test inputs, shaped as the model takes them (for signatures and exports)."""
        self.setup()
        test = self.splits["test"]
        return torch.stack([test[i][0] for i in range(min(num_samples, len(test)))]).clone()
