"""DigitsDataModule: scikit-learn's bundled handwritten digits (1,797 8x8 images, 10 classes)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from trainers.data.arrays import ArrayDataModule


class DigitsDataModule(ArrayDataModule):
    """Real data with no download: 8x8 grey images shaped (1, 8, 8), labels 0-9."""

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        digits = load_digits()
        return digits.images.reshape(-1, 1, 8, 8).astype(np.float32), digits.target

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, 8, 8)

    @property
    def num_classes(self) -> int:
        return 10
