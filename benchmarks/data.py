"""Does `data=parquet` stream: a streaming worker's memory at 10x the data, its training throughput against
`data=csv` (the whole file in every worker), and how long its training loop waits for batches.

    python benchmarks/data.py [--quick] [--repeats N] [--data-dir DIR]
    python benchmarks/data.py --write DIR --rows N [--features 32] [--csv]    (only write synthetic data)

Data (seed 42, written once, streamed in chunks with pyarrow's ParquetWriter, never whole in memory):
float32 features f0..f31 (standard normal), an int64 `label` from a learnable linear rule (argmax of 4
random projections of the features) and an int64 `id` (the row number), as Parquet files of ~64 MB, plus
a CSV of the same 1x rows (features and label, no id: data=csv takes every column but the label as a
feature). Full run: 1x = 1.8M rows (~225 MB of Parquet), 10x = 18M rows (2.25 GB; >= 2 GB checked); kept in
--data-dir (default: $TMPDIR/bench-data-data) and reused when its marker file says the same rows,
features and file size; delete the folder to free the disk. --quick writes 20k / 200k rows into the
arms' temporary folder.

Arms, interleaved, each a fresh `orchestrate train` process tree (model=mlp, scaling.num_workers=2 of 1
CPU and 1 torch thread, callbacks=none, tracking.log_model=false, MLflow on SQLite and Ray storage in
the arm's folder), the same model, batch and seed:
  parquet_1x   data=parquet on the 1x Parquet folder (data.id_column=id)
  parquet_10x  data=parquet on the 10x folder: 1 epoch, limited to the 1x arm's train / val / test
               batches per epoch (limit_*_batches): only its memory is compared, and a streaming worker's
               peak should not depend on how many batches it ran, only on what it holds at once
  csv_1x       data=csv on the 1x CSV
Measured:
  peak worker RSS  psutil's RSS of every RayTrainWorker process (the arm's descendants whose command
                   line says RayTrainWorker), sampled every 0.2 s; the peak per worker, max over workers
  samples/s        training samples (all ranks) over the training pass's time on rank 0: from each
                   epoch's start to its last training batch's end, summed over epochs (TrainPass below,
                   added through the callbacks group like StepTimer). StepTimer (harness.orchestrate_train
                   attaches it, and it works with data=parquet: batches arrive as (x, y)) sums only the
                   step bodies, on_train_batch_start to _end, so it leaves out exactly the time the loop
                   waits for its next batch, which is what differs between the arms; its figure is
                   shown beside (step samples/s) but not used in a key. EpochSummary's epoch times
                   include validation, so they are not used either.
  data_wait_share  `data/wait_share` (the product's own metric, logged per epoch by data=parquet),
                   read from the arm's MLflow store: median over epochs of parquet_1x
  wall s           process start to exit (Ray start, the statistics pass, training, test evaluation)
Keys: memory_10x_vs_1x (gate <= 1.25), throughput_parquet_vs_csv (gate >= 0.9), data_wait_share
(gate <= 0.05), memory_csv_vs_parquet_1x (no gate). With 2 workers on 2 CPUs, Ray Data's read and
preprocessing tasks reserve no CPU and share the workers' cores (the product's rule), so on a 2-CPU
machine the parquet arms pay for their data pipeline out of the training's CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import harness
from lightning.pytorch.callbacks import Callback
from step_timer import read_timings

NUM_CLASSES = 4
BATCH_SIZE = 256
# the hash split's shares (data=parquet) and the stratified split's (data=csv): the product's defaults
VAL_FRACTION, TEST_FRACTION = 0.15, 0.2
MARKER = "_bench_data.json"  # a name data=parquet's listing skips (leading underscore)
SAMPLE_INTERVAL_S = 0.2


# -- synthetic data -------------------------------------------------------------------------------------
def rows_per_file(num_features: int, file_mb: float) -> int:
    """Rows of a Parquet file of ~`file_mb` MB: 4 bytes a feature and 8 for the id (the label compresses away)."""
    return max(1, int(file_mb * 2**20 // (4 * num_features + 8)))


def write_data(folder: Path, rows: int, num_features: int, file_rows: int, csv: bool = False, chunk_rows: int = 65536) -> Path:
    """Write `rows` rows under `folder`: Parquet files of `file_rows` rows in folder/parquet/, and with `csv`
    the same rows (no id) in folder/data.csv. Chunk by chunk (row groups of `chunk_rows`), so memory stays
    at one chunk whatever `rows` is. Kept as is when folder's marker says the same arguments. Returns folder."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    wanted = {"rows": rows, "num_features": num_features, "file_rows": file_rows, "csv": csv, "seed": harness.SEED, "version": 2}
    marker = folder / MARKER
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "parquet").mkdir(parents=True)
    rng = np.random.default_rng(harness.SEED)
    projection = rng.standard_normal((num_features, NUM_CLASSES)).astype(np.float32)  # the rule the model can learn
    names = [f"f{i}" for i in range(num_features)]
    schema = pa.schema([*(pa.field(n, pa.float32()) for n in names), pa.field("label", pa.int64()), pa.field("id", pa.int64())])
    chunk_rows = min(chunk_rows, file_rows)
    writer = csv_writer = None
    in_file = file_index = 0
    try:
        if csv:
            csv_writer = pacsv.CSVWriter(str(folder / "data.csv"), pa.schema(list(schema)[:-1]))
        for start in range(0, rows, chunk_rows):
            count = min(chunk_rows, rows - start, file_rows - in_file)
            features = rng.standard_normal((count, num_features), dtype=np.float32)
            columns = [pa.array(features[:, i]) for i in range(num_features)]
            columns.append(pa.array(np.argmax(features @ projection, axis=1).astype(np.int64)))
            columns.append(pa.array(np.arange(start, start + count, dtype=np.int64)))
            table = pa.Table.from_arrays(columns, schema=schema)
            if writer is None:
                # no dictionary for the features and id: every value is distinct (it would make the files 1.5x larger)
                path = folder / "parquet" / f"part-{file_index:05d}.parquet"
                writer = pq.ParquetWriter(str(path), schema, use_dictionary=["label"])
            writer.write_table(table, row_group_size=chunk_rows)
            if csv_writer is not None:
                csv_writer.write_table(table.drop_columns(["id"]))
            in_file += count
            if in_file >= file_rows:
                writer.close()
                writer, in_file, file_index = None, 0, file_index + 1
    finally:
        if writer is not None:
            writer.close()
        if csv_writer is not None:
            csv_writer.close()
    marker.write_text(json.dumps(wanted))
    return folder


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- measuring ------------------------------------------------------------------------------------------
class TrainPass(Callback):
    """Times the training pass on rank zero: each epoch from on_train_epoch_start to its last
    on_train_batch_end (validation, which Lightning runs after that, left out; the waits for batches
    in). Writes `pass-*.json` into `output_dir` at the end of fit."""

    def __init__(self, output_dir: str):
        self.output_dir = Path(output_dir)
        self.epoch_start = self.last_end = 0.0
        self.epoch_s: list[float] = []
        self.num_samples = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epoch_start = self.last_end = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.last_end = time.perf_counter()
        self.num_samples += len(batch[0]) * trainer.world_size

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_s.append(self.last_end - self.epoch_start)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        result = {"pass_s": sum(self.epoch_s), "epoch_s": self.epoch_s, "num_samples": self.num_samples}
        (self.output_dir / f"pass-{os.getpid()}-{time.time_ns()}.json").write_text(json.dumps(result))


class WorkerMemory:
    """Samples the RSS of every RayTrainWorker below this process every SAMPLE_INTERVAL_S, in a thread;
    `peak_mb`: the highest RSS any one worker reached."""

    def __init__(self):
        self.peaks: dict[int, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            for process in me.children(recursive=True):
                try:
                    if "RayTrainWorker" not in " ".join(process.cmdline()):
                        continue
                    rss = process.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)
                self.samples += 1

    @property
    def peak_mb(self) -> float:
        if not self.peaks:
            raise RuntimeError("no RayTrainWorker process was seen below this process")
        return max(self.peaks.values()) / 2**20


def wait_shares(store: Path) -> list[float]:
    """Every epoch's data/wait_share of the one run in the arm's MLflow store."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    values = [m.value for run in runs for m in client.get_metric_history(run.info.run_id, "data/wait_share")]
    if not values:
        raise RuntimeError(f"no data/wait_share metric in {store} ({len(runs)} runs)")
    return values


# -- the benchmark -------------------------------------------------------------------------------------
def workload(args: argparse.Namespace) -> dict:
    rows = 20_000 if args.quick else 1_800_000
    return {
        "rows_1x": rows,
        "rows_10x": 10 * rows,
        "num_features": args.features,
        # files of ~64 MB; quick: of the 1x size, so that the 1x and 10x arms read blocks of one size alike
        "file_rows": rows if args.quick else rows_per_file(args.features, 64),
        "batch_size": BATCH_SIZE,
        "epochs": 2 if args.quick else 3,
        "epochs_10x": 1,
    }


def make_arms(work: dict, data: dict[str, Path], root: Path) -> dict:
    env = harness.arm_env(1)
    common = [
        "model=mlp",
        "scaling.num_workers=2",
        "scaling.cpus_per_worker=1",
        "callbacks=none",
        "tracking.log_model=false",
        f"data.batch_size={BATCH_SIZE}",
    ]
    # the 1x arm's batches per worker and epoch of each split (hash split: the shares, to within a batch)
    per_epoch = {
        split: -(-int(work["rows_1x"] * share) // (2 * BATCH_SIZE))
        for split, share in (("train", 1 - VAL_FRACTION - TEST_FRACTION), ("val", VAL_FRACTION), ("test", TEST_FRACTION))
    }
    parquet_1x = ["data=parquet", f"data.path={data['1x'] / 'parquet'}", "data.id_column=id", f"trainer.max_epochs={work['epochs']}"]
    parquet_10x = [
        "data=parquet",
        f"data.path={data['10x'] / 'parquet'}",
        "data.id_column=id",
        f"trainer.max_epochs={work['epochs_10x']}",
        f"trainer.limit_train_batches={per_epoch['train']}",
        f"trainer.limit_val_batches={per_epoch['val']}",
        f"trainer.limit_test_batches={2 * per_epoch['test']}",  # the driver's test pass runs on one process
    ]
    csv_1x = ["data=csv", f"data.path={data['1x'] / 'data.csv'}", f"trainer.max_epochs={work['epochs']}"]

    def arm(name: str, overrides: list[str], streamed_epochs: bool):
        def run(repeat: int) -> dict[str, float]:
            folder = root / f"{name}-{repeat}"
            folder.mkdir(parents=True)
            train_pass = ["+callbacks.train_pass._target_=data.TrainPass", f"+callbacks.train_pass.output_dir={folder / 'pass'}"]
            command = harness.orchestrate_train(folder, [*common, *overrides, *train_pass])
            with WorkerMemory() as memory:
                _, wall = harness.run_command(command, env, folder, folder / "log.txt", 3600)
            passes = sorted((folder / "pass").glob("pass-*.json"))
            if len(passes) != 1:
                raise RuntimeError(f"expected one TrainPass result in {folder / 'pass'}, found {len(passes)}")
            training = json.loads(passes[0].read_text())
            (timing,) = read_timings(folder / "timer")
            if timing["world_size"] != 2 or timing["torch_threads"] != 1:
                raise RuntimeError(f"expected 2 workers of 1 thread, got {timing}")
            metrics = {
                "peak_rss_mb": memory.peak_mb,
                "samples_per_s": training["num_samples"] / training["pass_s"],
                "step_samples_per_s": timing["num_samples"] / timing["in_loop_s"],
                "wall_s": wall,
                "rss_workers": len(memory.peaks),
            }
            if streamed_epochs:
                metrics["wait_share"] = statistics.median(wait_shares(folder / "mlruns.db"))
            return metrics

        return run

    return {
        "parquet_1x": arm("parquet_1x", parquet_1x, True),
        "parquet_10x": arm("parquet_10x", parquet_10x, False),
        "csv_1x": arm("csv_1x", csv_1x, False),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None, help="where the benchmark's data is written once and reused")
    parser.add_argument("--features", type=int, default=32, help="float32 feature columns")
    parser.add_argument("--write", type=Path, default=None, metavar="DIR", help="only write --rows rows of synthetic data into DIR")
    parser.add_argument("--rows", type=int, default=None, help="rows to --write")
    parser.add_argument("--csv", action="store_true", help="with --write: also DIR/data.csv (the same rows, no id)")
    parser.add_argument("--file-mb", type=float, default=64, help="with --write: size of each Parquet file")


def write_benchmark_data(work: dict, folder: Path) -> dict[str, Path]:
    started = time.perf_counter()
    data = {
        "1x": write_data(folder / "1x", work["rows_1x"], work["num_features"], work["file_rows"], csv=True),
        "10x": write_data(folder / "10x", work["rows_10x"], work["num_features"], work["file_rows"]),
    }
    for size, path in data.items():
        print(f"data {size}: {disk_bytes(path / 'parquet') / 1e6:.0f} MB of Parquet in {path}", file=sys.stderr)
    print(f"data ready in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return data


def main() -> None:
    args = harness.parse_args(__doc__.splitlines()[0], default_repeats=2, quick_repeats=1, add_arguments=add_arguments)
    if args.write:
        if not args.rows:
            raise SystemExit("--write needs --rows")
        write_data(args.write, args.rows, args.features, rows_per_file(args.features, args.file_mb), csv=args.csv)
        print(f"{args.rows} rows in {args.write}: {disk_bytes(args.write) / 1e6:.0f} MB")
        return
    work = workload(args)
    with harness.work_dir("data", args) as tmp:
        data_dir = args.data_dir or (Path(tmp) / "data" if args.quick else Path(tempfile.gettempdir()) / "bench-data-data")
        data = write_benchmark_data(work, data_dir)
        sizes = {k: disk_bytes(v / "parquet") for k, v in data.items()}
        if not args.quick and sizes["10x"] < 2e9:
            raise RuntimeError(f"the 10x folder holds {sizes['10x'] / 1e9:.2f} GB, under the 2 GB the benchmark needs")
        results = harness.interleave(make_arms(work, data, Path(tmp) / "arms"), args.repeats)
    med = lambda arm, key: harness.median(results, arm, key)  # noqa: E731
    text = "\n".join(
        [
            harness.header(
                "data",
                args,
                {
                    **work,
                    "parquet_mb_1x": round(sizes["1x"] / 1e6),
                    "parquet_mb_10x": round(sizes["10x"] / 1e6),
                    "workers": 2,
                    "torch_threads_per_worker": 1,
                },
            ),
            harness.table(
                results,
                [
                    ("peak_rss_mb", "peak worker RSS MB"),
                    ("samples_per_s", "training-pass samples/s"),
                    ("step_samples_per_s", "step-only samples/s (StepTimer)"),
                    ("wait_share", "data/wait_share (median of epochs)"),
                    ("wall_s", "end-to-end wall s"),
                ],
            ),
        ]
    )
    harness.finish(
        "data",
        text,
        {
            "memory_10x_vs_1x": med("parquet_10x", "peak_rss_mb") / med("parquet_1x", "peak_rss_mb"),
            "throughput_parquet_vs_csv": med("parquet_1x", "samples_per_s") / med("csv_1x", "samples_per_s"),
            "data_wait_share": med("parquet_1x", "wait_share"),
            "memory_csv_vs_parquet_1x": med("csv_1x", "peak_rss_mb") / med("parquet_1x", "peak_rss_mb"),
        },
    )


if __name__ == "__main__":
    main()
