"""SyntheticDataModule: a learnable classification problem of any size, generated from a seed."""

from __future__ import annotations

import numpy as np

from trainers.data.arrays import ArrayDataModule
from trainers.errors import SettingError


class SyntheticDataModule(ArrayDataModule):
    """Gaussian clusters around one random centre per class, so the labels are learnable.

    Args:
        num_samples: total samples over train, val and test.
        num_features: features per sample.
        num_classes: number of classes.
        noise: standard deviation of each sample around its class centre (higher is harder).
        **kwargs: batching and split arguments of ArrayDataModule.
    """

    def __init__(
        self,
        num_samples: int = 4096,
        num_features: int = 32,
        num_classes: int = 4,
        noise: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value, low in (
            ("data.num_samples", num_samples, 10),
            ("data.num_features", num_features, 1),
            ("data.num_classes", num_classes, 2),
        ):
            if value < low:
                raise SettingError(name, f"must be >= {low}, got {value}")
        if num_samples < 5 * num_classes:
            raise SettingError(
                "data.num_samples", f"({num_samples}) must be at least 5 x data.num_classes ({num_classes}) for stratified splits"
            )
        if noise <= 0:
            raise SettingError("data.noise", f"must be > 0, got {noise}")
        self.num_samples = num_samples
        self.num_features = num_features
        self._num_classes = num_classes
        self.noise = noise

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        centres = rng.normal(0.0, 1.0, size=(self._num_classes, self.num_features))
        labels = rng.integers(0, self._num_classes, size=self.num_samples)
        features = centres[labels] + rng.normal(0.0, self.noise, size=(self.num_samples, self.num_features))
        return features.astype(np.float32), labels

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.num_features,)

    @property
    def num_classes(self) -> int:
        return self._num_classes
