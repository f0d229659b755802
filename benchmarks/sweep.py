"""An 8-trial grid: `orchestrate train -m` (trials concurrently on Ray) against Hydra's basic launcher
running the same training as plain Lightning, one trial after another.

    python benchmarks/sweep.py [--quick] [--repeats N] [--epochs N]

Arms, interleaved, each a fresh process tree:
  orchestrate train -m   the project's Ray launcher (hydra_plugins/orchestrator_launcher): each trial a
                         1-worker run of 1 CPU, trained in its Ray task (Ray Train's local mode,
                         orchestrator/runtime/in_process.py), tracked as a child run in MLflow (SQLite)
  hydra basic launcher   benchmarks/sweep_app/app.py -m: plain Lightning on 1 device, 1 torch thread,
                         Lightning's default logger and checkpointing, trials in sequence in one process
  split by hand          the same app twice at once, each `-m` over half the grid (one learning rate
                         each): the most a 2-way concurrent sweep of this workload gets from this machine
                         with no launcher, cluster or tracking at all (not a gate; it bounds the gate)
Grid: optimizer.lr x model.hidden_dim x data.batch_size, 2 values each. Per-trial overhead = the
slot-seconds a trial holds beyond its own training loop: (concurrent trials x wall - sum of the
trials' training-loop time) / trials (concurrent trials: 2 for Ray on 2 CPUs and for the split, 1 for
sequential).
Machine CPU s = the CPU the whole machine spent during the arm (harness.machine_cpu_s): its process
tree, Ray's own processes included; CPU floor s = that over the machine's CPUs, the wall the arm could
not go below with the same work however well it were packed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import harness
from step_timer import read_timings

GRID = ["optimizer.lr=0.001,0.003", "model.hidden_dim=64,128", "data.batch_size=32,64"]
NUM_TRIALS = 8


def workload(quick: bool, epochs: int | None) -> dict:
    """--epochs N: trials N epochs long (the fixed costs of a sweep weigh less against longer trials)."""
    return {
        "data.num_samples": 4096 if quick else 16384,
        "data.num_features": 32,
        "data.num_classes": 4,
        "model.num_layers": 2,
        "trainer.max_epochs": epochs or (2 if quick else 5),
        "seed": harness.SEED,
    }


def run_arm(commands: list[list[str]], env: dict[str, str], folder: Path) -> tuple[float, float]:
    """(wall s, machine CPU s) of one arm's commands, run side by side."""
    cpu = harness.machine_cpu_s()
    _, wall = harness.run_commands(commands, env, folder, [folder / f"log-{i}.txt" for i in range(len(commands))], 1800)
    return wall, harness.machine_cpu_s() - cpu


def summarise(folder: Path, wall: float, cpu: float, concurrency: int) -> dict[str, float]:
    timings = read_timings(folder / "timer")
    if len(timings) != NUM_TRIALS:
        raise RuntimeError(f"expected {NUM_TRIALS} trial timings in {folder / 'timer'}, found {len(timings)}")
    training = sum(t["loop_s"] for t in timings)
    return {
        "wall_s": wall,
        "sum_training_s": training,
        "per_trial_overhead_s": (concurrency * wall - training) / NUM_TRIALS,
        "cpu_s": cpu,
        "cpu_floor_s": cpu / (os.cpu_count() or 1),
    }


def make_arms(work: dict, root: Path) -> dict:
    env = harness.arm_env(1)
    fixed = [f"{k}={v}" for k, v in work.items()]

    def orchestrate(repeat: int) -> dict[str, float]:
        folder = root / f"ray-{repeat}"
        folder.mkdir(parents=True)
        command = harness.orchestrate_train(
            folder,
            ["data=synthetic", "model=mlp", "callbacks=none", "scaling.num_workers=1", "scaling.cpus_per_worker=1", *fixed, *GRID],
            multirun=True,
        )
        return summarise(folder, *run_arm([command], env, folder), concurrency=2)

    def plain(folder: Path, grid: list[str], part: str) -> list[str]:
        return [
            sys.executable,
            str(harness.BENCH_DIR / "sweep_app" / "app.py"),
            "-m",
            *fixed,
            *grid,
            f"timer_dir={folder / 'timer'}",
            f"hydra.sweep.dir={folder / 'outputs' / part}",
        ]

    def sequential(repeat: int) -> dict[str, float]:
        folder = root / f"seq-{repeat}"
        folder.mkdir(parents=True)
        return summarise(folder, *run_arm([plain(folder, GRID, "all")], env, folder), concurrency=1)

    def split_by_hand(repeat: int) -> dict[str, float]:
        folder = root / f"split-{repeat}"
        folder.mkdir(parents=True)
        key, values = GRID[0].split("=")
        halves = [plain(folder, [f"{key}={value}", *GRID[1:]], f"half-{i}") for i, value in enumerate(values.split(","))]
        return summarise(folder, *run_arm(halves, env, folder), concurrency=len(halves))

    return {
        "orchestrate train -m (Ray)": orchestrate,
        "hydra basic launcher (sequential)": sequential,
        "split by hand (2 at once)": split_by_hand,
    }


def main() -> None:
    args = harness.parse_args(
        __doc__.splitlines()[0],
        default_repeats=2,
        quick_repeats=1,
        add_arguments=lambda parser: parser.add_argument(
            "--epochs", type=int, default=None, help="epochs per trial (default: 5, or 2 with --quick)"
        ),
    )
    work = workload(args.quick, args.epochs)
    with harness.work_dir("sweep", args) as tmp:
        results = harness.interleave(make_arms(work, Path(tmp)), args.repeats)
    ray_arm, seq_arm, split_arm = results
    med = lambda arm, key: harness.median(results, arm, key)  # noqa: E731
    text = "\n".join(
        [
            harness.header("sweep", args, {**work, "grid": " ".join(GRID), "trials": NUM_TRIALS, "torch_threads_per_trial": 1}),
            harness.table(
                results,
                [
                    ("wall_s", "sweep wall s"),
                    ("sum_training_s", "sum of trial training loops s"),
                    ("per_trial_overhead_s", "per-trial overhead s"),
                    ("cpu_s", "machine CPU s"),
                    ("cpu_floor_s", "CPU floor s"),
                ],
            ),
        ]
    )
    harness.finish(
        "sweep",
        text,
        {
            "sweep_speedup_vs_sequential": med(seq_arm, "wall_s") / med(ray_arm, "wall_s"),
            "per_trial_overhead_ray_s": med(ray_arm, "per_trial_overhead_s"),
            "per_trial_overhead_sequential_s": med(seq_arm, "per_trial_overhead_s"),
            "split_by_hand_speedup_vs_sequential": med(seq_arm, "wall_s") / med(split_arm, "wall_s"),
        },
    )


if __name__ == "__main__":
    main()
