"""data=parquet end to end, as a user runs it: Parquet files on a real local S3 endpoint (moto's server),
checkpoints written to paths.storage_dir=s3://..., 2 workers each reading its own shard through Ray Data,
Ctrl-C after two epochs (the run ends KILLED in seconds, naming the resume command), then `orchestrate
resume` from the checkpoints on S3, in the same MLflow run, which trains exactly the epochs after its last
checkpoint; a second resume and an unknown run id are refused (exit 2).

One run proves: reads from s3://, checkpoints on s3:// and a resume from them; each rank's rows in an epoch
are disjoint and together exactly the training split (the split the hash assigns, recomputed here); the
run's inputs (path, rows per split, digest of the listing) and its data-wait share are in MLflow."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from runs import ORCHESTRATE, only_run, wait_for_epochs
from s3_endpoint import s3_endpoint

ROWS, FEATURES, SEED = 20_000, 12, 7

# A user's own subclass of the streamed DataModule: each rank writes the row ids of its last epoch.
RECORDER = textwrap.dedent(
    """
    import json, os
    from orchestrator.data.module import StreamingDataModule

    class RecordingStreamingDataModule(StreamingDataModule):
        def __init__(self, record_dir, **kwargs):
            super().__init__(**kwargs)
            self.keep_row_ids, self.record_dir = True, record_dir

        def teardown(self, stage):
            if stage == "fit" and self.from_shards and "train" in self.loaders:
                import ray.train
                rank = ray.train.get_context().get_world_rank()
                with open(os.path.join(self.record_dir, f"rank{rank}.json"), "w") as f:
                    json.dump(self.loaders["train"].row_ids, f)
    """
)


def events(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    label = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"], frame["event_id"] = label, np.arange(ROWS) * 3 + 11
    return frame


@pytest.mark.e2e
@pytest.mark.timeout(1200)
def test_a_streamed_s3_run_shards_its_rows_checkpoints_to_s3_and_resumes(tmp_path, cli_env, monkeypatch):
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from orchestrator.data.streams import TRAIN, split_of

    (tmp_path / "recording.py").write_text(RECORDER)
    records = tmp_path / "records"
    records.mkdir()
    frame = events()
    with s3_endpoint() as s3:
        bucket = s3.bucket("lake")
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        for i, part in enumerate(frame.iloc[i * ROWS // 4 : (i + 1) * ROWS // 4] for i in range(4)):
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), f"{bucket}/events/part-{i}.parquet")
        env = {**cli_env, **s3.env}
        args = [
            "train", "data=parquet", f"data.path={bucket}/events/", "data.id_column=event_id",
            "data._target_=recording.RecordingStreamingDataModule", f"+data.record_dir={records}",
            "data.batch_size=128", f"seed={SEED}", "model=mlp", "callbacks=none", "tracking.log_model=false",
            "trainer.max_epochs=4", "scaling.num_workers=2", f"paths.storage_dir={bucket}/ray",
        ]  # fmt: skip
        process = subprocess.Popen([ORCHESTRATE, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        client = MlflowClient(cli_env["MLFLOW_TRACKING_URI"])
        run_id = wait_for_epochs(client, 2, process, timeout_s=600)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=180)
        assert time.monotonic() - interrupted < 60
        assert process.returncode == 130, output[-4000:]
        assert f"orchestrate resume {run_id}" in " ".join(output.split())  # rich wraps the message
        assert client.get_run(run_id).info.status == "KILLED"
        points_before = len(client.get_metric_history(run_id, "val/acc"))

        s3fs, root = pafs.FileSystem.from_uri(f"{bucket}/ray/{run_id}")
        saved = [i.base_name for i in s3fs.get_file_info(pafs.FileSelector(root)) if i.base_name.startswith("checkpoint_")]
        assert saved, "no checkpoint on S3"

        resumed = subprocess.run([ORCHESTRATE, "resume", run_id], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        again = subprocess.run([ORCHESTRATE, "resume", run_id], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert again.returncode == 2 and "already FINISHED" in again.stderr
        unknown = subprocess.run([ORCHESTRATE, "resume", "no_such_run"], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert unknown.returncode == 2 and "RUN_ID: no run 'no_such_run'" in unknown.stderr

    run = only_run(client)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert int(run.data.tags["orchestrator.resumes"]) == 1 and "test/acc" in run.data.metrics
    assert run.data.metrics["test/acc"] > 0.8  # a learnable rule: the streamed batches carry the right labels
    # It continues after the last checkpoint Ray registered, which may lag the last epoch MLflow logged
    # (the signal can land between the two): exactly the epochs after it are trained again.
    resumed_from = int(run.data.tags["orchestrator.resumed_from_epoch"])
    assert points_before >= 2 and 1 <= resumed_from <= points_before
    assert len(client.get_metric_history(run_id, "val/acc")) == points_before + 4 - resumed_from

    # Each rank's rows in the last epoch: disjoint, and together exactly the training split.
    seen = [set(json.loads((records / f"rank{rank}.json").read_text())) for rank in (0, 1)]
    train_ids = set(frame["event_id"][split_of(frame, ["event_id"], SEED, 0.15, 0.2) == TRAIN])
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == train_ids

    # What the run read, in MLflow: one input per split, with its rows and the listing's digest.
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    assert json.loads(inputs["train"].profile)["rows"] == len(train_ids)
    assert json.loads(inputs["train"].profile)["files"] == 4 and inputs["train"].digest == inputs["test"].digest
    assert "s3://lake/events" in inputs["train"].source or "lake/events" in inputs["train"].source
    wait = client.get_metric_history(run_id, "data/wait_share")
    assert len(wait) >= 4 and all(0.0 <= m.value <= 1.0 for m in wait)
    assert "data.stats" not in " ".join(run.data.params)  # found by the run, not chosen: in config.yaml only
