"""What the product's MLflow logging costs per training step.

    python benchmarks/tracking.py [--quick] [--repeats N]

One process, 1 torch thread, plain Lightning on one device (tracking is rank zero's job, so one rank
shows its whole cost), arms interleaved per repeat, a fresh fit each time:
  no logging                   logger=False
  RunLogger                    orchestrator/tracking/run_logger.py RunLogger into a real SQLite store, writing
                               into a run created beforehand, exactly as Ray workers use it
  no logging, per-step metric  a LitModule that also logs its loss every step (log_every_n_steps=50,
  RunLogger, per-step metric   the product's default), without and with RunLogger
The bundled classifier logs per epoch only (train/loss, train/acc, val/*); the per-step pair shows
what a user's step-level metrics cost. Step time = the training loop's wall time (on_train_start to
on_train_end, validation and logging included; StepTimer) over its steps.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import harness
from arms.mlp_workload import build
from step_timer import StepTimer, read_timings


def step_logging(model_class):
    class StepLoggingLitModule(model_class):
        """The same classifier, plus its loss logged every step."""

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.log("train/step_loss", loss, on_step=True, on_epoch=False)
            return loss

    return StepLoggingLitModule


def fit(work: argparse.Namespace, folder: Path, logger, per_step: bool) -> dict[str, float]:
    import lightning
    from arms.mlp_workload import trainer_arguments

    lightning.seed_everything(work.seed, workers=True, verbose=False)
    datamodule, model = build(work)
    if per_step:
        model.__class__ = step_logging(type(model))
    trainer = lightning.Trainer(
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=[StepTimer(str(folder))],
        enable_checkpointing=False,
        default_root_dir=str(folder),
        **trainer_arguments(work),
    )
    trainer.fit(model, datamodule=datamodule)
    (timing,) = read_timings(folder)
    return {
        "step_ms": 1000 * timing["loop_s"] / timing["num_steps"],
        "in_loop_step_ms": 1000 * timing["in_loop_s"] / timing["num_steps"],
        "loop_s": timing["loop_s"],
    }


def main() -> None:
    from mlflow import MlflowClient

    from orchestrator.tracking.run_logger import RunLogger

    args = harness.parse_args(__doc__.splitlines()[0], default_repeats=5, quick_repeats=3)
    harness.set_threads(1)
    work = argparse.Namespace(
        num_samples=8192 if args.quick else 16384,
        num_features=32,
        num_classes=4,
        hidden_dim=128,
        num_layers=2,
        batch_size=64,
        epochs=3 if args.quick else 5,
        lr=0.003,
        seed=harness.SEED,
    )
    import lightning  # noqa: F401 (sets its loggers' levels on import; quieted below)

    for name in ("lightning.pytorch", "lightning.fabric", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'mlruns.db'}"
        client = MlflowClient(uri)
        experiment_id = client.create_experiment("bench-tracking")  # creates the schema outside the timed fits

        def arm(name: str, logged: bool, per_step: bool):
            def run(repeat: int) -> dict[str, float]:
                folder = root / f"{name}-{repeat}"
                if not logged:
                    return fit(work, folder, False, per_step)
                run_id = client.create_run(experiment_id, run_name=f"{name}-{repeat}").info.run_id
                try:
                    return fit(work, folder, RunLogger(tracking_uri=uri, run_id=run_id), per_step)
                finally:
                    client.set_terminated(run_id, "FINISHED")

            return run

        arms = {
            "no logging": arm("none", False, False),
            "RunLogger": arm("runlogger", True, False),
            "no logging, per-step metric": arm("none-step", False, True),
            "RunLogger, per-step metric": arm("runlogger-step", True, True),
        }
        results = harness.interleave(arms, args.repeats)
        logged = len(client.get_metric_history(client.search_runs([experiment_id], max_results=1)[0].info.run_id, "val/acc"))
        if logged != work.epochs:
            raise RuntimeError(f"RunLogger wrote {logged} val/acc points, expected {work.epochs}")
    med = lambda arm_name: harness.median(results, arm_name, "step_ms")  # noqa: E731
    text = "\n".join(
        [
            harness.header("tracking", args, {**vars(work), "torch_threads": 1, "log_every_n_steps": 50, "store": "SQLite"}),
            harness.table(
                results,
                [("step_ms", "step time ms (loop / steps)"), ("in_loop_step_ms", "training step ms"), ("loop_s", "training loop s")],
            ),
        ]
    )
    harness.finish(
        "tracking",
        text,
        {
            "logging_overhead": med("RunLogger") / med("no logging"),
            "logging_overhead_per_step_metric": med("RunLogger, per-step metric") / med("no logging, per-step metric"),
        },
    )


if __name__ == "__main__":
    main()
