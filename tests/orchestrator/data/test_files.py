"""Where a streamed dataset is (orchestrator/data/files.py) and what StreamingDataModule checks before Ray starts:
listing, formats, schema, the listing's digest, AWS credentials, and s3:// through a real local endpoint. No Ray."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from s3_endpoint import s3_endpoint

from orchestrator.data.files import check_credentials, list_files
from orchestrator.errors import ConfigError

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def frame(rows: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"f0": rng.normal(size=rows), "f1": rng.normal(size=rows), "label": np.arange(rows) % 3})


def write(path: Path, data: pd.DataFrame | None = None) -> Path:
    """`data` (default: a small frame) as Parquet, CSV or JSON Lines, by `path`'s suffix."""
    data = frame() if data is None else data
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        data.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        data.to_json(path, orient="records", lines=True)
    else:
        pq.write_table(pa.Table.from_pandas(data, preserve_index=False), path)
    return path


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """An environment with no AWS credentials at all (and no shared credentials file)."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-credentials"))


# -- list_files ----------------------------------------------------------------------------------


def test_a_folder_is_searched_recursively_and_sorted(tmp_path):
    for name in ("b.parquet", "sub/a.parquet", "a.parquet", "sub/deeper/c.pq"):
        write(tmp_path / "data" / name)
    listing = list_files(str(tmp_path / "data"))
    root = str((tmp_path / "data").resolve())
    assert listing.files == tuple(f"{root}/{name}" for name in ("a.parquet", "b.parquet", "sub/a.parquet", "sub/deeper/c.pq"))
    assert listing.format == "parquet"
    assert len(listing.sizes) == len(listing.mtimes_ns) == 4 and all(size > 0 for size in listing.sizes)
    assert listing.total_bytes == sum(os.path.getsize(f) for f in listing.files)
    assert listing.uri == str(tmp_path / "data")


def test_a_single_file(tmp_path):
    write(tmp_path / "data" / "other.parquet")
    path = write(tmp_path / "data" / "one.csv")
    listing = list_files(str(path))
    assert listing.files == (str(path.resolve()),)
    assert listing.format == "csv"
    assert listing.sizes == (path.stat().st_size,)


def test_a_glob_selects_only_the_matching_files(tmp_path):
    for name in ("a.parquet", "b.parquet", "c.csv", "d.jsonl", "notes.txt"):
        write(tmp_path / "data" / name) if name != "notes.txt" else (tmp_path / "data" / name).write_text("x")
    listing = list_files(str(tmp_path / "data" / "*.parquet"))
    assert [Path(f).name for f in listing.files] == ["a.parquet", "b.parquet"]
    assert listing.format == "parquet"
    assert [Path(f).name for f in list_files(str(tmp_path / "data" / "?.csv")).files] == ["c.csv"]


def test_a_glob_does_not_reach_into_subfolders(tmp_path):
    write(tmp_path / "data" / "a.parquet")
    write(tmp_path / "data" / "sub" / "b.parquet")
    assert [Path(f).name for f in list_files(str(tmp_path / "data" / "*.parquet")).files] == ["a.parquet"]


def test_hidden_and_marker_files_are_skipped(tmp_path):
    data = tmp_path / "data"
    write(data / "part-0.parquet")
    write(data / "sub" / "part-1.parquet")
    for marker in ("_SUCCESS", ".part-0.parquet.crc", "_common_metadata.parquet", ".hidden.parquet", "sub/_SUCCESS", "sub/.x.crc"):
        (data / marker).write_bytes(b"not data")
    listing = list_files(str(data))
    assert [str(Path(f).relative_to(data.resolve())) for f in listing.files] == ["part-0.parquet", "sub/part-1.parquet"]


def test_files_under_hidden_and_temporary_folders_are_skipped(tmp_path):
    data = tmp_path / "data"
    write(data / "part-0.parquet")
    write(data / "_temporary" / "0" / "part-1.parquet")  # what an unfinished Spark job leaves
    write(data / ".staging" / "part-2.parquet")
    assert [Path(f).name for f in list_files(str(data)).files] == ["part-0.parquet"]


def test_jsonl_and_json_files_are_json(tmp_path):
    write(tmp_path / "data" / "a.jsonl")
    (tmp_path / "data" / "b.json").write_text(json.dumps({"f0": 1.0, "label": 0}) + "\n")
    listing = list_files(str(tmp_path / "data"))
    assert listing.format == "json"
    assert [Path(f).name for f in listing.files] == ["a.jsonl", "b.json"]


def test_a_folder_of_mixed_formats_is_refused_with_the_counts(tmp_path):
    for name in ("a.parquet", "b.parquet", "c.csv"):
        write(tmp_path / "data" / name)
    with pytest.raises(ConfigError, match=r"^data\.path: .* mixes file formats \(1 csv, 2 parquet\)") as err:
        list_files(str(tmp_path / "data"))
    assert err.value.key == "data.path"


def test_a_folder_without_data_files_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "README.txt").write_text("nothing here")
    (tmp_path / "data" / "_SUCCESS").write_text("")
    with pytest.raises(ConfigError, match=r"^data\.path: no Parquet, CSV or JSONL files match"):
        list_files(str(tmp_path / "data"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no Parquet, CSV or JSONL files"):
        list_files(str(tmp_path / "empty"))


def test_a_path_that_does_not_exist_is_refused(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match=rf"^data\.path: {re.escape(missing)} does not exist"):
        list_files(missing)


def test_an_empty_path_is_required():
    with pytest.raises(ConfigError, match=r"^data\.path: is required"):
        list_files("")


@pytest.mark.parametrize("key", ["data.val_path", "data.test_path"])
def test_the_key_given_is_the_key_named(tmp_path, key):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "mixed" / "a.csv")
    write(tmp_path / "mixed" / "b.jsonl")
    for uri, problem in (("", "is required"), (str(tmp_path / "nope"), "does not exist"), (str(tmp_path / "empty"), "no Parquet")):
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: .*{problem}") as err:
            list_files(uri, key)
        assert err.value.key == key
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: .*mixes file formats \(1 csv, 1 json\)"):
        list_files(str(tmp_path / "mixed"), key)


def test_schema_of_a_corrupt_file_is_a_config_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "broken.parquet").write_bytes(b"this is not parquet at all")
    listing = list_files(str(tmp_path / "data"))
    with pytest.raises(ConfigError, match=r"^data\.val_path: cannot read the schema of"):
        listing.schema("data.val_path")


def test_schema_reads_the_columns_of_each_format(tmp_path):
    for suffix in ("parquet", "csv", "jsonl"):
        write(tmp_path / suffix / f"a.{suffix}")
        schema = list_files(str(tmp_path / suffix)).schema("data.path")
        assert schema.names == ["f0", "f1", "label"], suffix
        assert pa.types.is_floating(schema.field("f0").type) and pa.types.is_integer(schema.field("label").type), suffix


# -- Listing.digest ------------------------------------------------------------------------------


def test_digest_is_stable_for_unchanged_files(tmp_path):
    for name in ("a.parquet", "sub/b.parquet"):
        write(tmp_path / "data" / name)
    first, second = list_files(str(tmp_path / "data")), list_files(str(tmp_path / "data"))
    assert first.digest == second.digest
    assert re.fullmatch(r"[0-9a-f]{64}", first.digest)


def test_digest_changes_with_size_mtime_and_files(tmp_path):
    data = tmp_path / "data"
    path = write(data / "a.parquet", frame(8))
    write(data / "b.parquet")
    before = list_files(str(data)).digest
    stat = path.stat()

    write(path, frame(80))  # another size, and the old modification time put back: only the size differs
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size != stat.st_size
    size_changed = list_files(str(data)).digest
    assert size_changed != before

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # same bytes, touched later
    mtime_changed = list_files(str(data)).digest
    assert mtime_changed not in (before, size_changed)

    write(data / "sub" / "c.parquet")
    added = list_files(str(data)).digest
    assert added not in (before, size_changed, mtime_changed)

    (data / "sub" / "c.parquet").unlink()
    assert list_files(str(data)).digest == mtime_changed  # gone again: back to the listing it was


def test_digest_ignores_skipped_files(tmp_path):
    write(tmp_path / "data" / "a.parquet")
    before = list_files(str(tmp_path / "data")).digest
    (tmp_path / "data" / "_SUCCESS").write_text("")
    assert list_files(str(tmp_path / "data")).digest == before


# -- check_credentials ---------------------------------------------------------------------------


def test_s3_without_any_credentials_names_the_variable(no_aws):
    with pytest.raises(ConfigError, match=r"^data\.path: no AWS credentials for s3://bucket/x: AWS_ACCESS_KEY_ID is not set") as err:
        list_files("s3://bucket/x")
    assert "AWS_SECRET_ACCESS_KEY" in err.value.fix and "AWS_ENDPOINT_URL" in err.value.fix
    with pytest.raises(ConfigError, match=r"^data\.test_path: .*AWS_ACCESS_KEY_ID"):
        list_files("s3://bucket/x", "data.test_path")


def test_s3_with_only_the_key_id_names_the_secret(no_aws, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    with pytest.raises(ConfigError, match=r"^data\.path: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not") as err:
        list_files("s3://bucket/x")
    assert err.value.fix == "set AWS_SECRET_ACCESS_KEY"


@pytest.mark.parametrize(
    "variables",
    [
        {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
        {"AWS_PROFILE": "dev"},
        {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"},
        {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"},
    ],
)
def test_s3_with_credentials_passes_the_check(no_aws, monkeypatch, variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert check_credentials("s3://bucket/x", "data.path") is None


def test_a_shared_credentials_file_is_credentials(no_aws, monkeypatch, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    assert check_credentials("s3://bucket/x", "data.path") is None


def test_a_local_path_needs_no_credentials(no_aws, tmp_path):
    assert check_credentials(str(tmp_path), "data.path") is None
    write(tmp_path / "data" / "a.parquet")
    assert len(list_files(str(tmp_path / "data")).files) == 1


# -- s3:// through a real local endpoint ---------------------------------------------------------


def test_s3_listing_schema_and_module_through_a_local_endpoint(monkeypatch):
    from orchestrator.data.module import StreamingDataModule

    table = pa.Table.from_pandas(frame(30), preserve_index=False).append_column("f2", pa.array(np.arange(30, dtype=np.int32)))
    with s3_endpoint() as s3:
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        uri = s3.bucket("orchestrator-events") + "/events/"
        for i in range(3):
            pq.write_table(table.slice(i * 10, 10), f"{uri}part-{i}.parquet")
        pq.write_table(table, "s3://orchestrator-events/elsewhere/part-9.parquet")  # beside the prefix: not listed

        listing = list_files(uri)
        assert listing.files == tuple(f"orchestrator-events/events/part-{i}.parquet" for i in range(3))
        assert listing.format == "parquet"
        assert len(listing.sizes) == 3 and all(size > 0 for size in listing.sizes)
        assert listing.digest == list_files(uri).digest

        module = StreamingDataModule(path=uri, label_column="label")  # the schema read from the Parquet footers on S3
        assert module.input_shape == (3,)
        assert module.plan.features == ("f0", "f1", "f2")
        assert not module.stats_known  # constructing reads no rows

        with pytest.raises(ConfigError, match=r"^data\.path: s3://orchestrator-events/missing/ does not exist"):
            list_files("s3://orchestrator-events/missing/")


# -- StreamingDataModule's constructor -----------------------------------------------------------


@pytest.fixture
def module_class():
    from orchestrator.data.module import StreamingDataModule

    return StreamingDataModule


@pytest.fixture
def folder(tmp_path) -> Path:
    """A folder of two Parquet files: rid (int), f0, f1 (float), city (string), label (int)."""
    data = frame(20).assign(rid=np.arange(20), city=["a", "b"] * 10)
    write(tmp_path / "data" / "part-0.parquet", data.iloc[:10])
    write(tmp_path / "data" / "part-1.parquet", data.iloc[10:])
    return tmp_path / "data"


@pytest.fixture
def numeric(tmp_path) -> Path:
    """A folder of one Parquet file: f0, f1 (float), label (int)."""
    write(tmp_path / "numeric" / "part-0.parquet")
    return tmp_path / "numeric"


def test_a_missing_label_column_lists_the_columns(module_class, numeric):
    with pytest.raises(ConfigError, match=r"^data\.label_column: 'target' is not a column of") as err:
        module_class(path=str(numeric), label_column="target")
    assert "['f0', 'f1', 'label']" in str(err.value)


def test_a_string_feature_column_is_refused(module_class, folder):
    with pytest.raises(ConfigError, match=r"^data\.path: feature columns must be numeric; .* city \((large_)?string\)"):
        module_class(path=str(folder), id_column="rid")
    with pytest.raises(ConfigError, match=r"^data\.feature_columns: feature columns must be numeric; .* city \((large_)?string\)"):
        module_class(path=str(folder), feature_columns=["f0", "city"])


def test_feature_columns_that_are_not_columns(module_class, numeric):
    with pytest.raises(ConfigError, match=r"^data\.feature_columns: .* lacks the feature column\(s\) \['nope'\]") as err:
        module_class(path=str(numeric), feature_columns=["f0", "nope"])
    assert "['f0', 'f1', 'label']" in str(err.value)


def test_a_missing_id_column(module_class, numeric):
    with pytest.raises(ConfigError, match=r"^data\.id_column: 'rid' is not a column of .*its columns are \['f0', 'f1', 'label'\]"):
        module_class(path=str(numeric), id_column="rid")


def test_id_and_label_columns_are_not_features(module_class, tmp_path):
    write(tmp_path / "with_id" / "a.parquet", frame(6).assign(rid=np.arange(6)))
    module = module_class(path=str(tmp_path / "with_id"), id_column="rid", seed=7, test_fraction=0.1)
    assert module.plan.features == ("f0", "f1")
    assert module.input_shape == (2,)
    assert (module.plan.id_column, module.plan.label, module.plan.seed) == ("rid", "label", 7)
    assert (module.plan.val_fraction, module.plan.test_fraction) == (0.15, 0.1)
    assert list(module.plan.listings) == ["main"]
    assert module_class(path=str(tmp_path / "with_id")).input_shape == (3,)  # without id_column, rid is a feature


def test_explicit_features_leave_the_other_columns_out(module_class, folder):
    module = module_class(path=str(folder), id_column="rid", feature_columns=["f0", "f1"])
    assert module.plan.features == ("f0", "f1")
    assert module.input_shape == (2,)


def test_feature_columns_keep_the_order_given(module_class, numeric):
    module = module_class(path=str(numeric), feature_columns=["f1", "f0"])
    assert module.plan.features == ("f1", "f0")


def test_a_val_path_takes_the_val_split_out_of_the_hash(module_class, numeric, tmp_path):
    write(tmp_path / "val" / "a.parquet", frame(4, seed=1))
    module = module_class(path=str(numeric), val_path=str(tmp_path / "val"), val_fraction=0.3, test_fraction=0.25)
    assert module.plan.val_fraction == 0.0 and module.plan.test_fraction == 0.25
    assert sorted(module.plan.listings) == ["main", "val"]
    assert module.plan.listings["val"].files == (str((tmp_path / "val" / "a.parquet").resolve()),)

    write(tmp_path / "test" / "a.csv", frame(4, seed=2))
    module = module_class(path=str(numeric), test_path=str(tmp_path / "test"))
    assert module.plan.test_fraction == 0.0 and module.plan.val_fraction == 0.15
    assert sorted(module.plan.listings) == ["main", "test"]
    assert module.plan.listings["test"].format == "csv"


def test_a_bad_val_path_names_its_key(module_class, numeric, tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.val_path: .* does not exist"):
        module_class(path=str(numeric), val_path=str(tmp_path / "nope"))
    write(tmp_path / "val" / "a.parquet", frame(4).rename(columns={"label": "y"}))
    with pytest.raises(ConfigError, match=r"^data\.label_column: 'label' is not a column of .*val"):
        module_class(path=str(numeric), val_path=str(tmp_path / "val"))


def test_a_val_path_missing_a_feature_column_is_refused(module_class, numeric, tmp_path):
    write(tmp_path / "val" / "a.parquet", frame(4).drop(columns=["f1"]))
    with pytest.raises(ConfigError, match=r"^data\.(val_path|feature_columns): .*f1"):
        module_class(path=str(numeric), val_path=str(tmp_path / "val"))


def test_an_extra_string_column_of_a_val_path_is_not_blamed_on_data_path(module_class, numeric, tmp_path):
    write(tmp_path / "val" / "a.parquet", frame(4).assign(note="x"))
    try:
        module = module_class(path=str(numeric), val_path=str(tmp_path / "val"))
    except ConfigError as err:
        assert err.key == "data.val_path", str(err)
    else:
        assert module.plan.features == ("f0", "f1")


@pytest.mark.parametrize(
    "arguments, key",
    [
        ({"batch_size": 0}, "data.batch_size"),
        ({"batch_size": -4}, "data.batch_size"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "data.val_fraction"),
        ({"val_fraction": 0.7, "test_fraction": 0.4}, "data.val_fraction"),
        ({"val_fraction": 1.0}, "data.val_fraction"),
        ({"val_fraction": -0.1}, "data.val_fraction"),
        ({"test_fraction": 1.5}, "data.test_fraction"),
        ({"shuffle_buffer_rows": -1}, "data.shuffle_buffer_rows"),
        ({"prefetch_batches": -1}, "data.prefetch_batches"),
    ],
)
def test_bad_numbers_name_their_key(module_class, numeric, arguments, key):
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: ") as err:
        module_class(path=str(numeric), **arguments)
    assert err.value.key == key


def test_fractions_of_a_split_with_its_own_path_are_not_checked(module_class, numeric, tmp_path):
    write(tmp_path / "val" / "a.parquet")
    module = module_class(path=str(numeric), val_path=str(tmp_path / "val"), val_fraction=0.9, test_fraction=0.5)
    assert (module.plan.val_fraction, module.plan.test_fraction) == (0.0, 0.5)


@pytest.mark.parametrize("suffix, fmt", [("jsonl", "json"), ("csv", "csv"), ("parquet", "parquet")])
def test_each_format_constructs(module_class, tmp_path, suffix, fmt):
    data = frame(12).assign(f2=np.arange(12))
    write(tmp_path / suffix / f"a.{suffix}", data.iloc[:6])
    write(tmp_path / suffix / "sub" / f"b.{suffix}", data.iloc[6:])
    module = module_class(path=str(tmp_path / suffix), batch_size=4)
    assert module.plan.listings["main"].format == fmt
    assert len(module.plan.listings["main"].files) == 2
    assert module.plan.features == ("f0", "f1", "f2")
    assert module.input_shape == (3,)
    assert module.batch_size == 4 and not module.stats_known


def test_given_stats_are_kept(module_class, numeric):
    stats = {"rows": {"train": 5, "val": 2, "test": 1}, "classes": [0, 1, 2], "class_counts": [3, 3, 2], "mean": [0, 0], "std": [1, 1]}
    module = module_class(path=str(numeric), stats=stats)
    assert module.stats_known and module.stats is stats and module.num_classes == 3


def test_the_checks_before_ray_build_the_model_without_a_pass_over_the_data(numeric, monkeypatch):
    """check_buildable (before Ray starts) builds the model with a stand-in number of classes; asking for
    the real statistics without Ray is an error, never a Ray started behind cluster.*'s back."""
    import ray

    from orchestrator.config.build import check_buildable

    config = {
        "data": {"_target_": "orchestrator.data.module.StreamingDataModule", "path": str(numeric), "label_column": "label"},
        "model": {"_target_": "trainers.models.mlp.MLPClassifierLitModule", "hidden_dim": 8},
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.01},
    }
    datamodule, model = check_buildable(config)
    assert datamodule.checking and not datamodule.stats_known and model.hparams.num_classes == 2
    # as before `orchestrate` connects (an earlier test of this session may have started the shared Ray)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("the statistics started a Ray"))
    with pytest.raises(RuntimeError, match="need Ray"):
        _ = datamodule.stats
