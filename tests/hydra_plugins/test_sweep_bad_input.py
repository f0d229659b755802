"""Fast tier: bad sweeps are refused with the key and the fix before any trial, Ray or MLflow run."""

from __future__ import annotations

import sys

import pytest
from hydra.core.global_hydra import GlobalHydra


def orchestrate_train(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`orchestrate train ARGS` through the CLI's dispatcher, in this process (the checks run before
    Ray, so no cluster starts)."""
    from orchestrator import cli

    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["orchestrate"])  # the dispatcher sets the verb's own argv
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", *args])
    GlobalHydra.instance().clear()
    return exited.value.code, capsys.readouterr().err


TUNE = ["-m", "hydra/sweeper=tune", "hydra.sweeper.num_trials=2", "trainer.max_epochs=1"]


@pytest.mark.parametrize(
    "args, code, message",
    [
        # the CLI parses every override with Hydra's grammar first (exit 2, the override and Hydra's reason)
        ([*TUNE, "optimizer.lr=interval(1e-4"], 2, "'optimizer.lr=interval(1e-4': no viable alternative at input"),
        ([*TUNE, "model.hidden_dim=choice()"], 2, "empty choice is not legal"),
        # Hydra's composer refuses an unknown key of a grid (exit 1, Hydra's message naming it)
        (["-m", "model.width=32,64"], 1, "Could not override 'model.width'"),
        # the sweep plugins refuse these (exit 2, the key and the fix)
        ([*TUNE, "model.width=choice(32,64)"], 2, "model.width"),  # no such key
        ([*TUNE, "+model.width=choice(32,64)"], 2, "model.width: is not an argument of this model"),  # built on the driver
        ([*TUNE, "optimizer.lr=interval(1e-4,1e-1)", "hydra.sweeper.metric=val/accuracy"], 2, "hydra.sweeper.metric"),
        ([*TUNE, "optimizer.lr=interval(1e-4,1e-1)", "hydra.sweeper.num_trials=0"], 2, "hydra.sweeper.num_trials: must be > 0"),
        (["-m", "optimizer.lr=1e-3,1e-2", "hydra.launcher.metric=val/accuracy"], 2, "hydra.launcher.metric"),
        (["-m", "optimizer.lr=1e-3,1e-2", "hydra.launcher.max_concurrent_trials=0"], 2, "hydra.launcher.max_concurrent_trials"),
        ([*TUNE, "optimizer.lr=interval(-1,1e-1)"], 2, "optimizer.lr"),  # one end of the range is invalid
        (["-m", "optimizer.lr=1e-3,-1"], 2, "optimizer.lr"),  # the grid launcher checks every job first
    ],
)
def test_bad_sweep_is_refused_before_any_trial(args, code, message, monkeypatch, capsys, tracking_uri, tmp_path):
    exit_code, err = orchestrate_train(monkeypatch, capsys, *args, f"paths.storage_dir={tmp_path / 'ray'}")
    assert exit_code == code, err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "mlruns.db").exists() or _no_runs(tracking_uri)


def _no_runs(uri: str) -> bool:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    return not client.search_runs([e.experiment_id for e in client.search_experiments()])
