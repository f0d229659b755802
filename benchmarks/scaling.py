"""Does `orchestrate train` scale: 1 worker vs 2 workers, 1 torch thread each, compute-heavy MLP.

    python benchmarks/scaling.py [--quick] [--repeats N]

Arms, interleaved, each a fresh `orchestrate train` process tree with the same data, model, batch per
worker and epochs; only `scaling.num_workers` differs. Throughput = training samples over all workers
per second of rank 0's summed training-step time (StepTimer); the loop throughput (validation and
per-epoch reporting included) and the end-to-end wall are reported beside it.
"""

from __future__ import annotations

from pathlib import Path

import harness
from step_timer import read_timings


def workload(quick: bool) -> dict:
    # 1024 samples per worker per step: ~0.3 s of compute per step against one all-reduce of the 10.5 MB of
    # gradients, so compute dominates (at 256 per worker the all-reduce took as long as the step itself).
    return {
        "data.num_samples": 16384 if quick else 49152,
        "data.num_features": 512,
        "data.num_classes": 10,
        "data.batch_size": 1024,
        "model.hidden_dim": 1024,
        "model.num_layers": 3,
        "trainer.max_epochs": 1 if quick else 2,
    }


def make_arms(work: dict, root: Path) -> dict:
    env = harness.arm_env(1)
    base = ["data=synthetic", "model=mlp", "callbacks=none", "scaling.cpus_per_worker=1", *(f"{k}={v}" for k, v in work.items())]

    def arm(num_workers: int):
        def run(repeat: int) -> dict[str, float]:
            folder = root / f"w{num_workers}-{repeat}"
            folder.mkdir(parents=True)
            command = harness.orchestrate_train(folder, [*base, f"scaling.num_workers={num_workers}"])
            _, wall = harness.run_command(command, env, folder, folder / "log.txt", 1200)
            (timing,) = read_timings(folder / "timer")
            if timing["world_size"] != num_workers or timing["torch_threads"] != 1:
                raise RuntimeError(f"expected {num_workers} workers of 1 thread, got {timing}")
            return {
                "samples_per_s": timing["num_samples"] / timing["in_loop_s"],
                "loop_samples_per_s": timing["num_samples"] / timing["loop_s"],
                "in_loop_s": timing["in_loop_s"],
                "wall_s": wall,
            }

        return run

    return {"1 worker": arm(1), "2 workers": arm(2)}


def main() -> None:
    args = harness.parse_args(__doc__.splitlines()[0], default_repeats=2, quick_repeats=1)
    work = workload(args.quick)
    with harness.work_dir("scaling", args) as tmp:
        results = harness.interleave(make_arms(work, Path(tmp)), args.repeats)
    med = lambda arm, key: harness.median(results, arm, key)  # noqa: E731
    text = "\n".join(
        [
            harness.header("scaling", args, {**work, "torch_threads_per_worker": 1}),
            harness.table(
                results,
                [
                    ("samples_per_s", "in-loop samples/s"),
                    ("loop_samples_per_s", "loop samples/s (with val)"),
                    ("in_loop_s", "in-loop s (rank 0)"),
                    ("wall_s", "end-to-end wall s"),
                ],
            ),
        ]
    )
    harness.finish(
        "scaling",
        text,
        {
            "speedup_2_workers": med("2 workers", "samples_per_s") / med("1 worker", "samples_per_s"),
            "loop_speedup_2_workers": med("2 workers", "loop_samples_per_s") / med("1 worker", "loop_samples_per_s"),
            "wall_ratio_2_vs_1": med("2 workers", "wall_s") / med("1 worker", "wall_s"),
        },
    )


if __name__ == "__main__":
    main()
