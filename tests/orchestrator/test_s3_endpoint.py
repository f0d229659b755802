"""The local S3 endpoint (tests/s3_endpoint.py) as pyarrow, and so Ray, reaches it: s3:// URIs and AWS_* variables."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from s3_endpoint import s3_endpoint


def test_pyarrow_writes_and_reads_a_parquet_dataset_on_the_endpoint(monkeypatch):
    table = pa.table({"id": list(range(50)), "label": [i % 3 for i in range(50)], "text": [f"row {i}" for i in range(50)]})
    with s3_endpoint() as s3:
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        uri = s3.bucket("orchestrator-data") + "/data"
        pq.write_to_dataset(table, uri, partition_cols=["label"])

        files = ds.dataset(uri, format="parquet", partitioning="hive").files
        assert files and all(f.startswith("orchestrator-data/data/label=") and f.endswith(".parquet") for f in files)
        back = ds.dataset(uri, format="parquet", partitioning="hive").to_table()
        assert back.select(["id", "label", "text"]).cast(table.schema).sort_by("id").equals(table)
