"""StreamingDataModule (`data=parquet`): a Lightning DataModule over Ray Data streams, for tabular data that
need not fit one worker.

On a Ray Train worker (`from_shards`, set by the worker loop) every split comes from
`ray.train.get_dataset_shard`: the driver passed the datasets to the TorchTrainer, and Ray splits them
into equal shards (`streaming_split(equal=True)`), so every rank runs the same number of steps. Anywhere
else (the driver's test evaluation, compression stages, a sweep trial trained in its own process) the
module streams the split itself. Either way batches arrive as ready tensors, through
`iter_torch_batches` with a local shuffle buffer and prefetching.
"""

from __future__ import annotations

import time
from typing import Any

from lightning import Callback, LightningDataModule

from orchestrator.data import streams
from orchestrator.data.files import list_files
from orchestrator.errors import ConfigError


def _check_fraction(key: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(key, f"must be in [0, 1), got {value}")


SHARED_TASKS = 2  # Ray Data tasks of one operator at once when they reserve no CPU (they share the workers')
CHECK_CLASSES = 2  # the classes a model is built with by the checks before Ray starts (no pass has run yet)


class Batches:
    """An iterable of (x, y) batches over a Ray DataIterator or Dataset, one pass per `iter()` (one epoch),
    that measures how long the loop waited for its batches: `wait_s` over `pass_s` is the data-wait share."""

    def __init__(self, source, batch_size: int, shuffle_buffer_rows: int | None, prefetch_batches: int, seed: int):
        self.source, self.batch_size = source, batch_size
        self.shuffle_buffer_rows, self.prefetch_batches, self.seed = shuffle_buffer_rows, prefetch_batches, seed
        self.epoch = 0
        self.wait_s = self.pass_s = 0.0
        self.started = None  # perf_counter() when the current pass began
        self.row_ids: list = []  # the `row_id` of every row seen in the last pass, when the stream keeps them

    def __iter__(self):
        self.wait_s, self.row_ids, self.pass_s = 0.0, [], 0.0
        self.started = start = time.perf_counter()
        batches = iter(
            self.source.iter_torch_batches(
                batch_size=self.batch_size,
                prefetch_batches=self.prefetch_batches,
                local_shuffle_buffer_size=self.shuffle_buffer_rows or None,
                local_shuffle_seed=self.seed + self.epoch if self.shuffle_buffer_rows else None,
                device="cpu",
            )
        )
        self.epoch += 1
        while True:
            asked = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                self.pass_s = time.perf_counter() - start
                return
            self.wait_s += time.perf_counter() - asked
            if streams.ROW_ID_COLUMN in batch:
                self.row_ids.extend(batch[streams.ROW_ID_COLUMN].tolist())
            yield batch["x"], batch["y"]

    @property
    def wait_share(self) -> float:
        """Of the last pass, or of the current one so far (a pass Lightning cut short never ends)."""
        elapsed = self.pass_s or (time.perf_counter() - self.started if self.started else 0.0)
        return self.wait_s / elapsed if elapsed > 0 else 0.0


class StreamingDataModule(LightningDataModule):
    """Numeric feature columns and one label column, in Parquet, CSV or JSONL files at a local path, a
    glob or a URI (s3://...), streamed through Ray Data.

    Args:
        path: a folder (searched recursively), a file, or a glob; `s3://bucket/prefix` with the usual AWS
            variables (and AWS_ENDPOINT_URL for an S3-compatible endpoint).
        label_column: the class label (integers or strings; classes are its sorted distinct values).
        feature_columns: the features, in order; default every numeric column but the label and id.
        id_column: a row key: the split hashes it (else it hashes the row's features and label).
        val_path, test_path: files of their own for validation / test (the hash split then leaves that
            split out of `path`).
        batch_size: rows per batch on each worker.
        val_fraction, test_fraction: shares of `path`'s rows held out by the hash split.
        seed: the split's hash key, and the shuffle buffer's seed.
        shuffle_buffer_rows: rows in each worker's local shuffle buffer (0: no shuffle).
        prefetch_batches: batches Ray Data prepares ahead of the training loop.
        stats: what one pass over the data found (rows per split, classes, feature means and standard
            deviations); filled in by the driver before training, computed here if missing.
    """

    def __init__(
        self,
        path: str,
        label_column: str = "label",
        feature_columns: list[str] | None = None,
        id_column: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        seed: int = 0,
        shuffle_buffer_rows: int = 10_000,
        prefetch_batches: int = 2,
        stats: dict[str, Any] | None = None,
    ):
        super().__init__()
        if batch_size <= 0:
            raise ConfigError("data.batch_size", f"must be a positive integer, got {batch_size}")
        for key, value in (("data.shuffle_buffer_rows", shuffle_buffer_rows), ("data.prefetch_batches", prefetch_batches)):
            if value < 0:
                raise ConfigError(key, f"must be >= 0, got {value}")
        val_fraction = 0.0 if val_path else val_fraction
        test_fraction = 0.0 if test_path else test_fraction
        _check_fraction("data.val_fraction", val_fraction)
        _check_fraction("data.test_fraction", test_fraction)
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError("data.val_fraction", f"+ data.test_fraction must be < 1, got {val_fraction + test_fraction}")
        listings = {"main": list_files(path, "data.path")}
        for split, own in (("val", val_path), ("test", test_path)):
            if own:
                listings[split] = list_files(own, f"data.{split}_path")
        features = self._check_schema(listings, label_column, feature_columns, id_column)
        self.plan = streams.Plan(listings, features, label_column, id_column, seed, val_fraction, test_fraction)
        self.batch_size, self.seed = batch_size, seed
        self.shuffle_buffer_rows, self.prefetch_batches = shuffle_buffer_rows, prefetch_batches
        self._stats = stats
        self.from_shards = False  # the worker loop sets it: read the splits Ray Train hands this rank
        self.keep_row_ids = False  # stream `row_id` (data.id_column) with each batch, for who-saw-what checks
        self.loaders: dict[str, Batches] = {}
        # set by the checks before Ray starts: the model is built with CHECK_CLASSES until the pass has counted them
        self.checking = False

    @staticmethod
    def _check_schema(listings, label: str, features: list[str] | None, id_column: str | None) -> tuple[str, ...]:
        """The feature columns (from data.path's schema, or data.feature_columns), checked in every source:
        the label, the id column and each feature present, each feature numeric. Errors name the source's key."""
        import pyarrow.types as patypes

        chosen: tuple[str, ...] = ()
        for source, listing in listings.items():  # "main" first
            key = "data.path" if source == "main" else f"data.{source}_path"
            schema = listing.schema(key)
            names = list(schema.names)
            if label not in names:
                raise ConfigError("data.label_column", f"{label!r} is not a column of {listing.uri}", f"its columns are {names}")
            if id_column and id_column not in names:
                raise ConfigError("data.id_column", f"{id_column!r} is not a column of {listing.uri}", f"its columns are {names}")
            if source == "main":
                chosen = tuple(features) if features else tuple(n for n in names if n not in (label, id_column))
            missing = [n for n in chosen if n not in names]
            if missing:
                blamed = "data.feature_columns" if features and source == "main" else key
                raise ConfigError(blamed, f"{listing.uri} lacks the feature column(s) {missing}", f"its columns are {names}")
            non_numeric = [n for n in chosen if not (patypes.is_integer(schema.field(n).type) or patypes.is_floating(schema.field(n).type))]
            if non_numeric:
                raise ConfigError(
                    "data.feature_columns" if features and source == "main" else key,
                    f"feature columns must be numeric; {listing.uri} has {', '.join(f'{n} ({schema.field(n).type})' for n in non_numeric)}",
                    "list the numeric ones in data.feature_columns, or encode the others",
                )
            if not chosen:
                raise ConfigError(key, f"{listing.uri} has no feature column besides the label")
        return chosen

    # -- what the model is built from ----------------------------------------------------------
    @property
    def stats_known(self) -> bool:
        """The pass over the data has run (or its results were given): classes and rows are known."""
        return self._stats is not None

    @property
    def stats(self) -> dict[str, Any]:
        if self._stats is None:
            import ray

            if not ray.is_initialized():  # Ray Data would start a Ray of its own, not the one cluster.* asks for
                raise RuntimeError("a streamed dataset's statistics need Ray: connect (runtime.cluster.connect) first")
            self._stats = streams.statistics(self.plan)
        return self._stats

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (len(self.plan.features),)

    @property
    def num_classes(self) -> int:
        if self._stats is None and self.checking:
            return CHECK_CLASSES
        return len(self.stats["classes"])

    def check_rows(self, num_workers: int) -> None:
        """Every split can give every worker at least one full batch (else ranks would idle or hang)."""
        rows = self.stats["rows"]
        need = num_workers * self.batch_size
        for split in ("train", "val"):
            if rows[split] < need:
                raise ConfigError(
                    "data.batch_size",
                    f"the {split} split has {rows[split]} rows, fewer than {num_workers} worker(s) x {self.batch_size} rows per batch",
                    "lower data.batch_size or scaling.num_workers, or give more data",
                )
        if rows["test"] == 0:
            raise ConfigError("data.test_fraction", "the test split is empty", "raise data.test_fraction or set data.test_path")

    # -- Ray Data -------------------------------------------------------------------------------
    def ray_datasets(self, task_cpus: float | None = None, splits: tuple[str, ...] = ("train", "val")) -> dict[str, Any]:
        """The splits as Ray Datasets of ready tensors, for TorchTrainer(datasets=...). `task_cpus`: the
        CPUs each Ray Data task reserves (None: Ray Data's default of one). Tasks that reserve none are
        not limited by the cluster's CPUs: SHARED_TASKS of each operator run at once."""
        task_args = None if task_cpus is None else {"num_cpus": task_cpus}
        if task_cpus == 0:
            task_args["concurrency"] = SHARED_TASKS
        return {split: streams.ready(self.plan, self.stats, split, self.keep_row_ids, task_args) for split in splits}

    def _batches(self, split: str, shuffle: bool) -> Batches:
        if self.from_shards:
            import ray.train

            source = ray.train.get_dataset_shard(split)
        else:
            source = streams.ready(self.plan, self.stats, split, self.keep_row_ids)
        self.loaders[split] = Batches(
            source, self.batch_size, self.shuffle_buffer_rows if shuffle else None, self.prefetch_batches, self.seed
        )
        return self.loaders[split]

    def train_dataloader(self) -> Batches:
        return self._batches("train", shuffle=True)

    def val_dataloader(self) -> Batches:
        return self._batches("val", shuffle=False)

    def test_dataloader(self) -> Batches:
        return self._batches("test", shuffle=False)

    def predict_dataloader(self) -> Batches:
        return self._batches("test", shuffle=False)


class DataWait(Callback):
    """Logs `data/wait_share`: the share of each training epoch's pass that the loop spent waiting for
    batches (0: the data was always ready)."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        loader = getattr(trainer.datamodule, "loaders", {}).get("train")
        if loader is not None and loader.started is not None:
            pl_module.log("data/wait_share", loader.wait_share, on_epoch=True, sync_dist=True)  # the ranks' mean
