"""A real training run: local Ray cluster, 2 workers on gloo, MLflow on SQLite. One run, checked whole."""

from __future__ import annotations

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from orchestrator.train import run_train
from runs import artifact_paths

pytestmark = pytest.mark.ray

EPOCHS = 4


def test_train_on_ray_leaves_exactly_one_complete_run(ray_cluster, compose_train, tracking_uri, tmp_path):
    cfg = compose_train(
        "data=digits", "model=mlp", f"trainer.max_epochs={EPOCHS}", "scaling.num_workers=2",
        "optimizer.lr=0.005", "callbacks=none", "+cluster.runtime_env.env_vars.SERVICE_TOKEN=s3cr3t",
    )
    outcome = run_train(cfg)

    client = MlflowClient(tracking_uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert [r.info.run_id for r in runs] == [outcome.run_id]  # one run: not one per rank
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["orchestrator.kind"] == "train"
    assert len(run.data.tags["orchestrator.config_hash"]) == 16
    assert run.data.params["optimizer.lr"] == "0.005"
    assert run.data.params["trainer.max_epochs"] == str(EPOCHS)
    assert run.data.params["scaling.num_workers"] == "2"
    assert run.data.params["model.hidden_dim"] == "128"
    for key in ("train/loss", "val/loss", "val/acc"):
        history = client.get_metric_history(outcome.run_id, key)
        assert len(history) == EPOCHS, key  # one point per epoch, from rank 0 only
        assert sorted(m.step for m in history) == [m.step for m in history]
    # Lightning adds `epoch` to each logging call (train and val end): one step per epoch.
    assert len({m.step for m in client.get_metric_history(outcome.run_id, "epoch")}) == EPOCHS
    assert run.data.metrics["test/acc"] > 0.85
    assert 0 < run.data.metrics["test/f1"] <= 1

    # Secrets never reach MLflow in clear, in params or in config.yaml.
    assert run.data.params["cluster.runtime_env.env_vars.SERVICE_TOKEN"] == "*****"
    config_yaml = client.download_artifacts(outcome.run_id, "config.yaml", str(tmp_path))
    assert "s3cr3t" not in open(config_yaml).read()

    artifacts = artifact_paths(client, outcome.run_id)
    assert {"config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
            "plots/learning_curves.png", "plots/confusion_matrix.png"} <= artifacts
    best = client.download_artifacts(outcome.run_id, "checkpoints/best.ckpt", str(tmp_path))
    assert "state_dict" in torch.load(best, weights_only=True)

    models = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert [m.source_run_id for m in models] == [outcome.run_id]
    loaded = mlflow.pytorch.load_model(f"models:/{models[0].model_id}")
    assert mlflow.models.get_model_info(f"models:/{models[0].model_id}").signature is not None
    digits = torch.randn(3, 1, 8, 8)
    assert loaded(digits).shape == (3, 10)


def test_embedded_ray_dashboard_binds_to_loopback_only(ray_cluster):
    import ray

    url = ray._private.worker.global_worker.node.address_info["webui_url"]
    assert url.split(":")[0] == "127.0.0.1"
