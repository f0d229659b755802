"""What `orchestrate train` costs over writing the same training by hand.

    python benchmarks/overhead.py [--quick] [--repeats N]

Arms, run interleaved (A B C A B C ...), each a fresh process tree, 2 ranks of 1 torch thread each:
  A  plain Lightning DDP, 2 processes on CPU (benchmarks/arms/lightning_ddp.py)
  B  a hand-written Ray Train TorchTrainer script with Ray's Lightning adapters and Ray's defaults
     (benchmarks/arms/ray_train.py)
  C  `orchestrate train` with MLflow on SQLite in a temp dir, StepTimer passed as a config override
     (`+callbacks.step_timer._target_=step_timer.StepTimer`; the product ships it to the Ray workers)
Same data (data=synthetic, fixed seed), model (MLP), optimizer, epochs and batch in every arm.
Measured: end-to-end wall (process start to exit), time to first training step, in-loop time (summed
training-step time on rank 0, by the same StepTimer callback in all three arms).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import harness
from arms.mlp_workload import overrides
from step_timer import read_timings

ARMS_DIR = harness.BENCH_DIR / "arms"


def workload(quick: bool) -> argparse.Namespace:
    return argparse.Namespace(
        num_samples=8192 if quick else 16384,
        num_features=32,
        num_classes=4,
        hidden_dim=256,
        num_layers=2,
        batch_size=64,
        epochs=3 if quick else 5,
        lr=0.003,
        seed=harness.SEED,
    )


def workload_flags(work: argparse.Namespace) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in vars(work).items()]


def measured(folder: Path, start_unix: float, wall_s: float) -> dict[str, float]:
    timings = read_timings(folder / "timer")
    if len(timings) != 1:
        raise RuntimeError(f"expected one StepTimer result in {folder / 'timer'}, found {len(timings)}")
    timing = timings[0]
    if timing["torch_threads"] != 1:
        raise RuntimeError(f"rank 0 trained with {timing['torch_threads']} torch threads, not 1")
    return {
        "wall_s": wall_s,
        "first_step_s": timing["first_step_unix"] - start_unix,
        "in_loop_s": timing["in_loop_s"],
        "loop_s": timing["loop_s"],
        "num_steps": timing["num_steps"],
    }


def make_arms(work: argparse.Namespace, root: Path) -> dict:
    python = sys.executable
    flags = workload_flags(work)
    env = harness.arm_env(1)

    def lightning_ddp(repeat: int) -> dict[str, float]:
        folder = root / f"A-{repeat}"
        command = [python, str(ARMS_DIR / "lightning_ddp.py"), *flags, f"--timer-dir={folder / 'timer'}"]
        start, wall = harness.run_command(command, {**env, "MASTER_PORT": str(15500 + repeat)}, folder.parent, folder / "log.txt", 900)
        return measured(folder, start, wall)

    def ray_train(repeat: int) -> dict[str, float]:
        folder = root / f"B-{repeat}"
        command = [python, str(ARMS_DIR / "ray_train.py"), *flags, f"--timer-dir={folder / 'timer'}", f"--storage-dir={folder / 'ray'}"]
        start, wall = harness.run_command(command, env, folder.parent, folder / "log.txt", 900)
        return measured(folder, start, wall)

    def orchestrate(repeat: int) -> dict[str, float]:
        folder = root / f"C-{repeat}"
        folder.mkdir(parents=True)
        command = harness.orchestrate_train(
            folder, [*overrides(work), "scaling.num_workers=2", "scaling.cpus_per_worker=1", "callbacks=none"]
        )
        start, wall = harness.run_command(command, env, folder, folder / "log.txt", 900)
        return measured(folder, start, wall)

    return {"A plain Lightning DDP": lightning_ddp, "B hand-written Ray Train": ray_train, "C orchestrate train": orchestrate}


def main() -> None:
    args = harness.parse_args(__doc__.splitlines()[0], default_repeats=3, quick_repeats=1)
    work = workload(args.quick)
    with harness.work_dir("overhead", args) as tmp:
        results = harness.interleave(make_arms(work, Path(tmp)), args.repeats)
    a, b, c = results
    med = lambda arm, key: harness.median(results, arm, key)  # noqa: E731
    text = "\n".join(
        [
            harness.header("overhead", args, {**vars(work), "ranks": 2, "torch_threads_per_rank": 1}),
            harness.table(
                results,
                [
                    ("wall_s", "end-to-end wall s"),
                    ("first_step_s", "time to first step s"),
                    ("in_loop_s", "in-loop s (rank 0)"),
                    ("loop_s", "training loop s"),
                    ("num_steps", "steps"),
                ],
            ),
        ]
    )
    harness.finish(
        "overhead",
        text,
        {
            "in_loop_vs_lightning": med(c, "in_loop_s") / med(a, "in_loop_s"),
            "wall_vs_raytrain": med(c, "wall_s") / med(b, "wall_s"),
            "wall_vs_lightning": med(c, "wall_s") / med(a, "wall_s"),
            "first_step_vs_raytrain": med(c, "first_step_s") / med(b, "first_step_s"),
        },
    )


if __name__ == "__main__":
    main()
