"""`orchestrate compare` on a real MLflow store: which runs, which columns, what order, what it refuses."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from tables import line_with, read_table

from orchestrator.commands.compare import (
    compare,
    compare_url,
    print_comparison,
    write_plot,
)
from orchestrator.errors import ConfigError


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("orchestrator")
    for lr, acc in (("0.001", 0.91), ("0.1", 0.97), ("0.01", None)):
        run = client.create_run(exp_id, tags={"orchestrator.kind": "train"})
        for key, value in (("optimizer.lr", lr), ("trainer.max_epochs", "5"), ("paths.storage_dir", f"/tmp/{lr}")):
            client.log_param(run.info.run_id, key, value)
        if acc is not None:
            client.log_metric(run.info.run_id, "val/acc", acc)
    client.create_run(exp_id, tags={"orchestrator.kind": "sweep"})  # a sweep run summarises, it is not compared
    return uri, exp_id


@pytest.fixture
def sweep_store(tmp_path):
    """A 10-trial sweep: four params vary (one a class path), two metrics, MLflow's own run names."""
    uri = f"sqlite:///{tmp_path / 'sweep.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("orchestrator")
    grid = itertools.product(
        ("0.001", "0.01", "0.1"),
        ("64", "128"),
        ("0.0", "0.0001"),
        ("torch.optim.lr_scheduler.CosineAnnealingLR", "torch.optim.lr_scheduler.StepLR"),
    )
    for i, (lr, hidden, decay, scheduler) in enumerate(itertools.islice(grid, 10)):
        run_id = client.create_run(exp_id, tags={"orchestrator.kind": "train"}).info.run_id
        for key, value in (
            ("optimizer.lr", lr),
            ("model.hidden_dim", hidden),
            ("optimizer.weight_decay", decay),
            ("scheduler._target_", scheduler),
            ("trainer.max_epochs", "5"),
        ):
            client.log_param(run_id, key, value)
        client.log_metric(run_id, "val/acc", 0.9 + i / 100)
        client.log_metric(run_id, "test/acc", 0.8 + i / 100)
        client.set_terminated(run_id)
    return uri


VARYING = ["model.hidden_dim", "optimizer.lr", "optimizer.weight_decay", "scheduler._target_"]


def assert_readable_at_80_columns(text: str, comparison) -> None:
    """Every run id whole on its row's line; the metrics first, then the params that differ, each header and
    value whole (never "…", never folded); the columns left out named in one line under the table."""
    assert "val/acc" in text and "test/acc" in text, text  # not folded over lines
    headers, rows, after = read_table(text)
    assert headers[:3] == ["run", "val/acc", "test/acc"]
    assert headers[3:] == VARYING[: len(headers) - 3] and len(headers) > 3  # some params still fit
    assert [row[0] for row in rows] == comparison.run_ids
    for i, row in enumerate(rows):
        assert row[1:3] == [f"{comparison.metrics[m][i]:.4f}" for m in ("val/acc", "test/acc")]
        assert (
            row[3:]
            == [
                comparison.params[key][i].rsplit(".", 1)[-1]
                if key == "scheduler._target_"  # a class by its name
                else comparison.params[key][i]
                for key in headers[3:]
            ]
        )
    left_out = [key for key in VARYING if key not in headers] + ["name"]
    assert f"not shown: {', '.join(left_out)}" in " ".join(" ".join(after).split())
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines() if not line.startswith(("open the UI", "compare view")))


def test_a_sweep_of_ten_runs_reads_whole_at_80_columns(sweep_store, pipe_console):
    comparison = compare(sweep_store, None, None, ["val/acc", "test/acc"], "max")
    print_comparison(comparison, compare_url("http://127.0.0.1:5000", comparison), "")
    assert_readable_at_80_columns(pipe_console.getvalue(), comparison)
    from orchestrator.commands.compare import comparison_records

    records = comparison_records(comparison)
    assert [sorted(r) for r in records] == [["metrics", "params", "run_id", "run_name"]] * 10
    assert records[0]["metrics"] == {"val/acc": 0.99, "test/acc": 0.89} and records[0]["run_name"]
    assert records[0]["params"]["scheduler._target_"] == "torch.optim.lr_scheduler.StepLR"  # as stored, not shortened


@pytest.mark.e2e
def test_compare_to_a_pipe_at_80_columns_and_as_json(sweep_store, cli_env, tmp_path):
    """`orchestrate compare | grep RUN_ID` as a user types it (stdout a pipe, 80 columns), then --json."""
    orchestrate = [
        str(Path(sys.executable).with_name("orchestrate")),
        "compare",
        "--tracking-uri",
        sweep_store,
        "--metric",
        "val/acc",
        "--metric",
        "test/acc",
    ]
    env = {**cli_env, "COLUMNS": "80"}
    out = subprocess.run(orchestrate, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    comparison = compare(sweep_store, None, None, ["val/acc", "test/acc"], "max")
    assert_readable_at_80_columns(out.stdout, comparison)
    assert all(run_id in line_with(out.stdout, "compare view: ") for run_id in comparison.run_ids)  # one line, whole

    from orchestrator.commands.compare import comparison_records

    out = subprocess.run([*orchestrate, "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout) == comparison_records(comparison)


def test_an_experiment_is_compared_best_first_on_the_params_that_vary(store, tmp_path):
    uri, exp_id = store
    comparison = compare(uri, None, None, ["val/acc"], "max")
    assert comparison.experiment_id == exp_id and len(comparison.run_ids) == 3
    assert comparison.metrics["val/acc"] == [0.97, 0.91, None]  # best first, the run without it last
    assert comparison.params == {"optimizer.lr": ["0.1", "0.001", "0.01"]}  # not the constant nor where it ran
    assert compare(uri, None, None, ["val/acc"], "min").metrics["val/acc"] == [0.91, 0.97, None]
    url = compare_url("http://127.0.0.1:5000", comparison)
    assert url.startswith("http://127.0.0.1:5000/#/compare-runs?runs=") and comparison.run_ids[0] in url
    write_plot(comparison, tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "experiment, parent, metric, key",
    [
        ("no_such_experiment", None, "val/acc", "--experiment"),
        (None, "no_such_run", "val/acc", "--parent"),
        (None, None, "val/accuracy", "--metric"),
    ],
)
def test_what_compare_refuses_names_the_option(store, experiment, parent, metric, key):
    with pytest.raises(ConfigError) as refused:
        compare(store[0], experiment, parent, [metric])
    assert refused.value.key == key


def test_plot_reads_params_as_mlflow_stores_them():
    """Params arrive as strings: numeric ones are plotted on a number axis (log when they span more
    than 20x), others as categories by their short name."""
    from orchestrator.sweeps.plots import metric_vs_params

    points = [
        ({"optimizer.lr": "0.001", "model._target_": "trainers.models.mlp.MLP"}, 0.5),
        ({"optimizer.lr": "0.1", "model._target_": "trainers.models.cnn.CNN"}, 0.7),
    ]
    figure = metric_vs_params(points, ["optimizer.lr", "model._target_"], "val/acc")
    lr_axis, target_axis = figure.axes[:2]
    assert lr_axis.get_xscale() == "log"
    assert [t.get_text() for t in target_axis.get_xticklabels()] == ["CNN", "MLP"]
