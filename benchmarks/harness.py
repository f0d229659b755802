"""The shared harness of the benchmarks: arguments, interleaved repeats, subprocess arms with explicit
thread counts, the markdown table (median, min, max per arm) and the final RESULT line."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
# Environment a parent may carry that would point an arm at someone else's cluster or store.
FOREIGN_ENV = (
    "RAY_ADDRESS",
    "MLFLOW_TRACKING_URI",
    "ORCHESTRATOR_PARENT_RUN_ID",
    "MASTER_ADDR",
    "MASTER_PORT",
    "LOCAL_RANK",
    "NODE_RANK",
    "WORLD_SIZE",
)
SEED = 42
# When the benchmark process started: its header reports the load the arms started under.
START_LOAD = os.getloadavg()
START_TIME = time.gmtime()


def parse_args(
    description: str, default_repeats: int, quick_repeats: int, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """The options every benchmark takes, plus those `add_arguments` adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smaller workload that finishes in under 5 minutes on 2 cores")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats of every arm")
    parser.add_argument("--keep", action="store_true", help="keep the arms' folders (logs, MLflow stores) and print where")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = quick_repeats if args.quick else default_repeats
    return args


@contextlib.contextmanager
def work_dir(name: str, args: argparse.Namespace):
    """A temporary folder for the arms' files, removed at the end unless --keep."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        yield folder
    finally:
        if args.keep:
            print(f"arms' files kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def set_threads(num_threads: int) -> None:
    """Fix this process's thread counts (torch intra-op and the OpenMP/MKL pools of child processes)."""
    import torch

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(num_threads)
    torch.set_num_threads(num_threads)


def arm_env(num_threads: int, **extra: str) -> dict[str, str]:
    """The environment of a subprocess arm: explicit thread counts, the benchmarks folder importable
    (step_timer), nothing inherited that points at another cluster or tracking store."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(num_threads)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), str(REPO_DIR)])
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_command(command: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout_s: float) -> tuple[float, float]:
    """Run one arm's command to the end. Returns (start unix time, wall seconds). Output goes to
    `log_path`; a non-zero exit or a timeout raises with the log's tail."""
    return run_commands([command], env, cwd, [log_path], timeout_s)


def run_commands(commands: list[list[str]], env: dict[str, str], cwd: Path, log_paths: list[Path], timeout_s: float) -> tuple[float, float]:
    """Run commands side by side, each with its own log, until the last one ends. Returns (start unix
    time, wall seconds from the first start to the last end); a non-zero exit or a timeout raises with
    that command's log tail, after the others are killed."""
    start_unix, start = time.time(), time.perf_counter()
    processes, failed = [], None
    with contextlib.ExitStack() as stack:
        try:
            for command, log_path in zip(commands, log_paths, strict=True):
                log_path.parent.mkdir(parents=True, exist_ok=True)
                out = stack.enter_context(open(log_path, "wb"))
                processes.append(subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
            running = list(zip(commands, log_paths, processes, strict=False))
            while running and not failed:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    running[0][2].wait(timeout=0.05)  # returns the moment it ends: the wall is not rounded up
                for command, log_path, process in list(running):
                    code = process.poll()
                    if code is not None:
                        running.remove((command, log_path, process))
                        if code != 0:
                            failed = f"{' '.join(command[:3])} exited {code}; log: {log_path}\n{tail(log_path)}"
                            break
                    elif time.perf_counter() - start > timeout_s:
                        failed = f"{' '.join(command[:3])} timed out after {timeout_s:.0f} s; log: {log_path}\n{tail(log_path)}"
                        break
            wall = time.perf_counter() - start
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    if failed:
        raise RuntimeError(failed)
    return start_unix, wall


def machine_cpu_s() -> float:
    """CPU seconds this machine has been busy since boot (/proc/stat: user, nice, system, irq, softirq;
    idle, iowait and the hypervisor's steal left out). Its difference over an arm is the CPU the arm's
    whole process tree used, Ray's own processes included, when nothing else runs."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def empty_store(path: Path) -> Path:
    """A SQLite MLflow store with its schema already created (the state of every run after a user's
    first), copied from a template made once per process; the first-use migration is not timed."""
    template = Path(tempfile.gettempdir()) / f"bench-empty-mlflow-{os.getpid()}.db"
    if not template.exists():
        from mlflow import MlflowClient

        MlflowClient(f"sqlite:///{template}").search_experiments()
        atexit.register(template.unlink, missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return path


def orchestrate_train(folder: Path, overrides: list[str], multirun: bool = False) -> list[str]:
    """`orchestrate train` as a user types it, with everything it writes kept inside `folder`: MLflow on
    SQLite, Ray storage, Hydra outputs; StepTimer added through the callbacks group (config override)."""
    runs = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    empty_store(folder / "mlruns.db")
    return [
        str(VENV_BIN / "orchestrate"),
        "train",
        *(["-m"] if multirun else []),
        *overrides,
        "+callbacks.step_timer._target_=step_timer.StepTimer",
        f"+callbacks.step_timer.output_dir={folder / 'timer'}",
        f"tracking.uri=sqlite:///{folder / 'mlruns.db'}",
        f"paths.storage_dir={folder / 'ray'}",
        f"{runs}={folder / 'outputs'}",
    ]


def tail(path: Path, num_lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-num_lines:])


def interleave(arms: dict[str, Callable[[int], dict[str, float]]], repeats: int) -> dict[str, list[dict[str, float]]]:
    """Run every arm once per repeat, in order (A B C A B C ...). Each arm returns its metrics."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    for repeat in range(repeats):
        for name, arm in arms.items():
            started = time.perf_counter()
            metrics = arm(repeat)
            results[name].append(metrics)
            shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            print(
                f"[{time.strftime('%H:%M:%S')}] repeat {repeat + 1}/{repeats} {name}: {shown} "
                f"({time.perf_counter() - started:.1f} s, load {os.getloadavg()[0]:.2f})",
                file=sys.stderr,
                flush=True,
            )
    return results


def median(results: dict[str, list[dict[str, float]]], arm: str, key: str) -> float:
    return statistics.median(r[key] for r in results[arm])


def fmt(value: float) -> str:
    """Numbers as people read them: 1017, 37.2, 0.0861, 1.63e+06."""
    size = abs(value)
    if size >= 1e5:
        return f"{value:.3g}"
    if size >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def table(results: dict[str, list[dict[str, float]]], columns: list[tuple[str, str]]) -> str:
    """A markdown table: one row per arm, median [min, max] of each metric column."""
    header = "| arm | n | " + " | ".join(f"{label} median [min, max]" for _, label in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for arm, runs in results.items():
        cells = []
        for key, _ in columns:
            values = [r[key] for r in runs if key in r]
            if not values:
                cells.append("-")
                continue
            cells.append(f"{fmt(statistics.median(values))} [{fmt(min(values))}, {fmt(max(values))}]")
        lines.append(f"| {arm} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def header(name: str, args: argparse.Namespace, workload: dict) -> str:
    load = START_LOAD
    described = ", ".join(f"{k}={v}" for k, v in workload.items())
    return (
        f"## {name} ({'quick' if args.quick else 'full'}, {args.repeats} interleaved repeats)\n\n"
        f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', START_TIME)}, load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs\n\nworkload: {described}\n"
    )


def finish(name: str, text: str, keys: dict[str, float]) -> None:
    """Print the report and the final RESULT line (with the 1-minute load average at the end)."""
    load = os.getloadavg()
    print(text)
    print(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(f"RESULT {name} " + " ".join(f"{k}={v:.3f}" for k, v in keys.items()), flush=True)
