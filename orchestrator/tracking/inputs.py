"""A run's streamed dataset as MLflow inputs (`log_inputs`): one input per split, each with the path, the
listing's digest (every file's path, size and modification time, never a sample of rows), the schema
and a profile of the rows and files. Compare views and `mlflow.search_runs` then tell which data a run
read and whether two runs read the same."""

from __future__ import annotations

import json
import warnings
from typing import Any

from mlflow.data.meta_dataset import MetaDataset


class StreamedDataset(MetaDataset):
    """An MLflow dataset known by its metadata only (MetaDataset), with a profile."""

    def __init__(self, source, name: str, digest: str, schema, profile: dict[str, Any]):
        super().__init__(source=source, name=name, digest=digest, schema=schema)
        self._profile = profile

    @property
    def profile(self) -> dict[str, Any]:
        return self._profile

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "profile": json.dumps(self._profile)}


def mlflow_schema(arrow_schema):
    """The MLflow column schema of a pyarrow schema (types MLflow has no name for are strings)."""
    import pyarrow.types as patypes
    from mlflow.types import ColSpec, DataType, Schema

    def kind(arrow_type) -> DataType:
        if patypes.is_boolean(arrow_type):
            return DataType.boolean
        if patypes.is_integer(arrow_type):
            return DataType.long
        if patypes.is_floating(arrow_type):
            return DataType.double
        return DataType.string

    return Schema([ColSpec(kind(field.type), field.name) for field in arrow_schema])


def log_streamed_inputs(client, run_id: str, datamodule) -> None:
    """Log a StreamingDataModule's splits as the run's inputs (context: train, val, test)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    stats, plan = datamodule.stats, datamodule.plan
    inputs = []
    for split in ("train", "val", "test"):
        listing = plan.listings.get(split, plan.listings["main"])
        profile = {
            "rows": stats["rows"][split],
            "files": len(listing.files),
            "bytes": listing.total_bytes,
            "format": listing.format,
            "split": "own path" if split in plan.listings else f"hash of the row, seed {plan.seed}",
        }
        if split == "train":  # rows per label value over every split
            profile["label_counts"] = dict(zip(map(str, stats["classes"]), stats["class_counts"], strict=True))
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": two registrations of one class
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(listing.uri)
        dataset = StreamedDataset(
            source,
            name=f"{listing.uri.rstrip('/').rsplit('/', 1)[-1]}:{split}",
            digest=listing.digest[:32],
            schema=mlflow_schema(listing.schema(f"data.{split}_path" if split in plan.listings else "data.path")),
            profile=profile,
        )
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, split)]))
    client.log_inputs(run_id, datasets=inputs)
