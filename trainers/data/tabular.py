"""TabularDataModule: a local CSV or Parquet file, the label column named in the config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from trainers.data.arrays import ArrayDataModule
from trainers.errors import SettingError

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_columns(path: Path) -> list[str]:
    """Column names only, without reading the rows."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return list(pq.read_schema(path).names)
    return list(pd.read_csv(path, nrows=0).columns)


class TabularDataModule(ArrayDataModule):
    """Numeric feature columns (standardised on the training split) and one label column.

    Labels may be strings or integers; they are mapped to 0..K-1 in sorted order.

    Args:
        path: a .csv file, or a .parquet/.pq file.
        label_column: name of the column that holds the class label.
        **kwargs: batching and split arguments of ArrayDataModule.
    """

    def __init__(self, path: str, label_column: str = "label", **kwargs):
        super().__init__(**kwargs)
        if not path:
            raise SettingError("data.path", "is required for data=csv (set data.path=/path/to/file.csv)")
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise SettingError(
                "data.path",
                f"does not exist or is not a file: {file}",
                "give a CSV or Parquet file, absolute or relative to the working directory",
            )
        columns = read_columns(file)
        if label_column not in columns:
            raise SettingError("data.label_column", f"{label_column!r} is not a column of {file.name}", f"its columns are {columns}")
        if len(columns) < 2:
            raise SettingError("data.path", f"{file} needs at least one feature column besides the label")
        self.path = str(file)
        self.label_column = label_column
        self._table: pd.DataFrame | None = None

    def _frame(self) -> pd.DataFrame:
        if self._table is None:
            file = Path(self.path)
            if file.suffix.lower() in PARQUET_SUFFIXES:
                frame = pd.read_parquet(file)
            else:
                frame = pd.read_csv(file)
            features = frame.drop(columns=[self.label_column])
            non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
            if non_numeric:
                raise SettingError("data.path", f"{file.name}: feature columns must be numeric", f"drop or encode {non_numeric}")
            self._table = frame
        return self._table

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        frame = self._frame()
        labels = frame[self.label_column]
        classes = sorted(labels.unique().tolist())
        index = {c: i for i, c in enumerate(classes)}
        y = labels.map(index).to_numpy(dtype=np.int64)
        x = frame.drop(columns=[self.label_column]).to_numpy(dtype=np.float32)
        return x, y

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self._frame().shape[1] - 1,)

    @property
    def num_classes(self) -> int:
        return int(self._frame()[self.label_column].nunique())
