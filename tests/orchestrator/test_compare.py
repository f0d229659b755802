"""`orchestrate compare` on a real MLflow store: which runs, which columns, what order, what it refuses."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from orchestrator.compare import compare, compare_url, write_plot
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


@pytest.mark.parametrize("experiment, parent, metric, key", [
    ("no_such_experiment", None, "val/acc", "--experiment"),
    (None, "no_such_run", "val/acc", "--parent"),
    (None, None, "val/accuracy", "--metric"),
])
def test_what_compare_refuses_names_the_option(store, experiment, parent, metric, key):
    with pytest.raises(ConfigError) as refused:
        compare(store[0], experiment, parent, [metric])
    assert refused.value.key == key


def test_plot_reads_params_as_mlflow_stores_them():
    """Params arrive as strings: numeric ones are plotted on a number axis (log when they span more
    than 20x), others as categories by their short name."""
    from orchestrator.sweep_plots import metric_vs_params

    points = [({"optimizer.lr": "0.001", "model._target_": "trainers.models.mlp.MLP"}, 0.5),
              ({"optimizer.lr": "0.1", "model._target_": "trainers.models.cnn.CNN"}, 0.7)]
    figure = metric_vs_params(points, ["optimizer.lr", "model._target_"], "val/acc")
    lr_axis, target_axis = figure.axes[:2]
    assert lr_axis.get_xscale() == "log"
    assert [t.get_text() for t in target_axis.get_xticklabels()] == ["CNN", "MLP"]
