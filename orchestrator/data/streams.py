"""The Ray Data pipeline of a streamed tabular dataset: read the files, assign every row to train, val or
test by a hash of the row, compute the statistics in one streaming pass, and turn batches into ready
tensors (`x` float32 [N, F] standardised, `y` int64 class indices).

Nothing is loaded whole: reading, splitting and preprocessing run as Ray Data tasks on the cluster's
CPUs, block by block, and each training worker iterates only its shard (`ray.train.get_dataset_shard`).

Splits are a pure function of the row: a 64-bit hash of its key columns (`data.id_column`, or every
column the model reads) under a key derived from `seed`, so a row lands in the same split whatever the
number of workers, blocks or files it is read in, and identical rows share a split (no leakage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
SPLITS = {"train": TRAIN, "val": VAL, "test": TEST}
SPLIT_COLUMN = "__split"
ROW_ID_COLUMN = "row_id"


@dataclass(frozen=True)
class Plan:
    """What the pipeline reads and how (from a StreamingDataModule's arguments).

    Attributes:
        listings: the Listing of each source: "main", and "val" / "test" when given their own paths.
        features: the feature columns, in order. label: the label column. id_column: the row key, or None.
        seed, val_fraction, test_fraction: the hash split (a fraction is 0 for a split with its own path).
    """

    listings: dict[str, Any]
    features: tuple[str, ...]
    label: str
    id_column: str | None
    seed: int
    val_fraction: float
    test_fraction: float


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (uint64 arithmetic wraps)."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def split_of(frame, key_columns: list[str], seed: int, val_fraction: float, test_fraction: float) -> np.ndarray:
    """TRAIN, VAL or TEST for each row of a pandas frame, from a seeded hash of its key columns."""
    import pandas as pd

    hashes = pd.util.hash_pandas_object(frame[key_columns], index=False).to_numpy(dtype=np.uint64)
    # pandas' own hash key reaches string columns only: the seed is mixed into every row's hash instead
    seeded = _mix(hashes ^ _mix(np.array([seed % (1 << 64)], dtype=np.uint64))[0])
    unit = (seeded >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # uniform in [0, 1)
    split = np.full(len(frame), TRAIN, dtype=np.int8)
    split[unit < test_fraction + val_fraction] = VAL
    split[unit < test_fraction] = TEST
    return split


def read(listing, task_args: dict[str, Any] | None = None):
    """A Ray Dataset over the listing's files (not read until iterated). `task_args`: the tasks' CPUs and
    how many run at once (num_cpus, concurrency)."""
    import ray.data

    context = ray.data.DataContext.get_current()  # each Dataset keeps a copy of it, taken here
    context.enable_progress_bars = False  # one bar per operator, every second, from every worker otherwise
    sharing = bool(task_args) and task_args.get("num_cpus") == 0
    previous = context.use_datasource_v2
    # Ray 2.60's second read path lists files in an operator of its own that takes no remote arguments and
    # so reserves a CPU: tasks that must reserve none (streamed_datasets in runtime/launch.py) take the first.
    context.use_datasource_v2 = previous and not sharing
    try:
        files, options = list(listing.files), {"filesystem": listing.filesystem, **(task_args or {})}
        if listing.format == "parquet":
            return ray.data.read_parquet(files, **options)
        if listing.format == "csv":
            return ray.data.read_csv(files, **options)
        return ray.data.read_json(files, lines=True, **options)
    finally:
        context.use_datasource_v2 = previous


def _transform_args(task_args: dict[str, Any] | None) -> dict[str, Any]:
    """A transform's arguments for `task_args`: its CPUs, and a task pool of `concurrency` tasks."""
    if not task_args:
        return {}
    from ray.data import TaskPoolStrategy

    args = {"num_cpus": task_args["num_cpus"]} if "num_cpus" in task_args else {}
    if task_args.get("concurrency"):
        args["compute"] = TaskPoolStrategy(size=task_args["concurrency"])
    return args


def _with_split(plan: Plan, source: str, task_args: dict[str, Any] | None = None):
    """The source's rows with SPLIT_COLUMN: hashed for "main", the source's own split otherwise."""
    key_columns = [plan.id_column] if plan.id_column else [*plan.features, plan.label]

    def add_split(frame):
        if source == "main":
            frame[SPLIT_COLUMN] = split_of(frame, key_columns, plan.seed, plan.val_fraction, plan.test_fraction)
        else:
            frame[SPLIT_COLUMN] = np.int8(SPLITS[source])
        return frame

    return read(plan.listings[source], task_args).map_batches(add_split, batch_format="pandas", **_transform_args(task_args))


def split_dataset(plan: Plan, split: str, task_args: dict[str, Any] | None = None):
    """The rows of one split, as Ray Data streams them."""
    source = split if split in plan.listings else "main"
    code = SPLITS[split]
    return _with_split(plan, source, task_args).filter(expr=f"{SPLIT_COLUMN} == {code}", **_transform_args(task_args))


def statistics(plan: Plan) -> dict[str, Any]:
    """One streaming aggregate pass per source: rows per split, the label's classes (sorted) and
    counts, and each feature's mean and standard deviation over the training split only."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from ray.data.aggregate import Mean, Std, ValueCounter

    def train_only(table: pa.Table) -> pa.Table:
        not_train = pc.not_equal(table[SPLIT_COLUMN], TRAIN)
        columns = {SPLIT_COLUMN: table[SPLIT_COLUMN], "label": table[plan.label]}
        for i, name in enumerate(plan.features):  # null outside the training split: the aggregates skip nulls
            values = pc.cast(table[name], pa.float64())
            columns[f"f{i}"] = pc.if_else(not_train, pa.scalar(None, pa.float64()), values)
        return pa.table(columns)

    rows = {name: 0 for name in SPLITS}
    labels: dict[Any, int] = {}
    mean = std = None
    for source in plan.listings:
        projected = _with_split(plan, source).map_batches(train_only, batch_format="pyarrow")
        aggregates = [ValueCounter(SPLIT_COLUMN), ValueCounter("label")]
        if source == "main":
            for i in range(len(plan.features)):
                aggregates += [Mean(f"f{i}", alias_name=f"mean{i}"), Std(f"f{i}", ddof=0, alias_name=f"std{i}")]
        result = projected.aggregate(*aggregates)
        counted = result[f"value_counter({SPLIT_COLUMN})"]
        for code, count in zip(counted["values"], counted["counts"], strict=True):
            rows[next(name for name, c in SPLITS.items() if c == code)] += int(count)
        label_counts = result["value_counter(label)"]
        for value, count in zip(label_counts["values"], label_counts["counts"], strict=True):
            labels[value] = labels.get(value, 0) + int(count)
        if source == "main":
            mean = [_finite(result[f"mean{i}"], 0.0) for i in range(len(plan.features))]
            std = [_finite(result[f"std{i}"], 1.0) for i in range(len(plan.features))]
    classes = sorted(labels)
    return {
        "rows": rows,
        "classes": [_plain(c) for c in classes],
        "class_counts": [labels[c] for c in classes],
        "mean": mean,
        "std": [s if s > 1e-8 else 1.0 for s in std],
    }


def _finite(value, default: float) -> float:
    return float(value) if value is not None and np.isfinite(value) else default


def _plain(value):
    """A label as JSON and YAML keep it (numpy scalars become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def tensors(plan: Plan, stats: dict[str, Any], keep_row_ids: bool = False):
    """The map_batches function that turns rows into `x` (standardised float32 features) and `y` (the
    label's index in the sorted classes), plus `row_id` when the plan has an id column and it is kept."""
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = np.asarray(stats["std"], dtype=np.float32)
    index = {value: i for i, value in enumerate(stats["classes"])}
    features, label, id_column = list(plan.features), plan.label, plan.id_column

    def to_tensors(frame) -> dict[str, np.ndarray]:
        x = (frame[features].to_numpy(dtype=np.float32) - mean) / std
        batch = {"x": x, "y": frame[label].map(index).to_numpy(dtype=np.int64)}
        if keep_row_ids and id_column:
            batch[ROW_ID_COLUMN] = frame[id_column].to_numpy()
        return batch

    return to_tensors


def ready(plan: Plan, stats: dict[str, Any], split: str, keep_row_ids: bool = False, task_args: dict[str, Any] | None = None):
    """The split as ready tensors, streamed. `task_args`: Ray remote arguments of every task (num_cpus)."""
    to_tensors = tensors(plan, stats, keep_row_ids)
    return split_dataset(plan, split, task_args).map_batches(to_tensors, batch_format="pandas", **_transform_args(task_args))
