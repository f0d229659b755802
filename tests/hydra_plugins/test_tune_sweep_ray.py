"""End-to-end: `orchestrate train -m hydra/sweeper=tune` runs Ray Train trials under Ray Tune (Optuna
TPE + ASHA), one MLflow sweep run with a child per trial, the best trial recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

EPOCHS = 3


@pytest.mark.e2e
def test_tune_sweep_trials_report_every_epoch_and_best_is_recorded(tmp_path, cli_env):
    command = [
        str(Path(sys.executable).with_name("orchestrate")),
        "train",
        "-m",
        "hydra/sweeper=tune",
        "hydra.sweeper.num_trials=3",
        "hydra.sweeper.max_concurrent_trials=2",
        "optimizer.lr=tag(log,interval(1e-4,1e-1))",
        "model.hidden_dim=choice(16,32)",
        "data=digits",
        "model=mlp",
        f"trainer.max_epochs={EPOCHS}",
        "scaling.num_workers=1",
        "tracking.experiment=tune-e2e",
        "tracking.log_model=false",
        f"paths.storage_dir={tmp_path / 'ray'}",
    ]
    done = subprocess.run(command, env={**cli_env, "COLUMNS": "200"}, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    client = MlflowClient(cli_env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("tune-e2e")
    sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrator.kind` = 'sweep'")
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    sweep = sweeps[0]
    assert sweep.data.params["sweep.search"] == "optuna"
    trials = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{sweep.info.run_id}'")
    assert len(trials) == 3
    assert len({t.data.params["optimizer.lr"] for t in trials}) == 3
    # What Tune saw of each trial: one result per epoch, which is what ASHA acts on
    results = sorted((tmp_path / "ray").glob(f"sweep-{sweep.info.run_id}/*/result.json"))
    assert len(results) == 3
    reported = {}
    for path in results:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        reported[lines[-1]["trial_id"]] = [line["val/acc"] for line in lines]
    by_trial = {t.data.tags["orchestrator.trial_id"]: t for t in trials}
    assert set(reported) == set(by_trial)

    for trial_id, trial in by_trial.items():
        assert trial.info.status == "FINISHED"  # early-stopped trials too, never left RUNNING
        assert trial.data.tags["orchestrator.kind"] == "train"
        assert 1e-4 <= float(trial.data.params["optimizer.lr"]) <= 1e-1
        assert trial.data.params["model.hidden_dim"] in ("16", "32")
        history = [m.value for m in client.get_metric_history(trial.info.run_id, "val/acc")]
        seen = reported[trial_id]
        assert seen == pytest.approx(history[: len(seen)], abs=1e-6)  # Tune saw MLflow's values, in order
        stopped = trial.data.tags.get("orchestrator.early_stopped") == "true"
        ran_to_the_end = len(history) == EPOCHS and "test/acc" in trial.data.metrics
        if len(seen) == EPOCHS:  # Tune saw every epoch: no rung stopped it
            assert not stopped and ran_to_the_end
        else:
            # ASHA stopped it at a rung. The stop is asynchronous: Ray Train's workers go on until it
            # reaches them, on a fast machine through the last epoch, so the run either records the
            # stop or ran to the end; never more epochs than that.
            assert 1 <= len(seen) <= len(history) <= EPOCHS
            assert stopped or ran_to_the_end, (len(seen), len(history), trial.data.tags)

    best = max(trials, key=lambda t: t.data.metrics["val/acc"])
    assert sweep.data.tags["orchestrator.best_run_id"] == best.info.run_id
    assert sweep.data.metrics["best/val/acc"] == pytest.approx(best.data.metrics["val/acc"])
    assert "plots/metric_vs_params.png" in [a.path for a in client.list_artifacts(sweep.info.run_id, "plots")]
    assert f"best trial: {best.info.run_id}" in done.stdout
