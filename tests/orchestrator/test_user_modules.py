"""A user's own plain Lightning modules (tests/plain_lightning.py) through the orchestrator: the config keys
of the default groups they do not take left out, evaluation and model logging from the Lightning API alone,
compression that skips what such a module does not offer; then `train` with 2 workers and `pipeline` with
the user's own config group files (`--config-dir`), as a user types them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from plain_lightning import DATA_TARGET, MODEL_TARGET, import_module, write_module
from runs import artifact_paths, run_reaped

from orchestrator.compression import quantize
from orchestrator.compression.stages import (
    DISTILLATION,
    STRUCTURED_PRUNING,
    plan,
    skip_reasons,
    skipped_methods,
)
from orchestrator.compression.variant import TorchVariant
from orchestrator.config.build import check_buildable
from orchestrator.config.compression import CompressionConfig
from orchestrator.config.prepare import resolved_config
from orchestrator.errors import ConfigError
from orchestrator.training.evaluate import evaluate

ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))
TARGETS = [f"data._target_={DATA_TARGET}", f"model._target_={MODEL_TARGET}"]


def plain_config(compose_train, tmp_path, monkeypatch, *overrides: str) -> dict:
    import_module(tmp_path, monkeypatch)
    written = [*TARGETS, *overrides]
    return resolved_config(compose_train(*written), written)


def test_default_group_keys_a_class_does_not_take_are_left_out_and_written_ones_refused(compose_train, tmp_path, monkeypatch):
    config = plain_config(compose_train, tmp_path, monkeypatch, "+model.width=32")
    # digits' val_fraction, seed, ... and the MLP's hidden_dim, ... were written for other classes
    assert config["data"] == {"_target_": DATA_TARGET, "batch_size": 64}
    assert config["model"] == {"_target_": MODEL_TARGET, "width": 32}
    check_buildable(config)
    with pytest.raises(ConfigError, match="data.val_fraction: is not an argument"):  # what the fix leaves out
        check_buildable(resolved_config(compose_train(*TARGETS), []))
    written = plain_config(compose_train, tmp_path, monkeypatch, "+data.shuffle=true", "data.val_fraction=0.2")
    assert written["data"]["val_fraction"] == 0.2 and written["data"]["shuffle"] is True  # the user's own: kept
    with pytest.raises(ConfigError, match=r"data\.(val_fraction|shuffle): is not an argument of this data"):
        check_buildable(written)


def test_a_plain_module_is_evaluated_and_logged_from_the_lightning_api(compose_train, tmp_path, monkeypatch, tracking_uri):
    mlflow.set_tracking_uri(tracking_uri)  # an earlier test may have set another store
    config = plain_config(compose_train, tmp_path, monkeypatch)
    _, model = check_buildable(config)
    checkpoint = tmp_path / "best.ckpt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)

    evaluation = evaluate(config, checkpoint)
    logged = {"test/loss", "test/acc", "test/max_logit"}  # what its test_step logs
    assert logged | {"test/f1"} == set(evaluation.metrics)  # f1 computed from its predictions
    assert evaluation.num_classes == 3 and evaluation.predictions.shape == evaluation.labels.shape == (100,)
    assert evaluation.example_input.shape == (2, 8)  # rows of its first test batch
    accuracy = float((evaluation.predictions == evaluation.labels).float().mean())
    assert evaluation.metrics["test/acc"] == pytest.approx(accuracy, abs=1e-6)

    from orchestrator.tracking.models import log_torch_model

    with mlflow.start_run():
        info = log_torch_model(evaluation.model, evaluation.example_input)
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 8)


def test_compression_skips_what_a_plain_module_does_not_offer(compose_train, tmp_path, monkeypatch, tracking_uri):
    mlflow.set_tracking_uri(tracking_uri)  # an earlier test may have set another store
    config = plain_config(compose_train, tmp_path, monkeypatch)
    _, model = check_buildable(config)
    assert set(skip_reasons(model)) == {STRUCTURED_PRUNING, DISTILLATION}
    _, mlp = check_buildable(resolved_config(compose_train("model=mlp"), []))
    assert skip_reasons(mlp) == {}

    compression = CompressionConfig(stages=["prune", "quantize", "distill"], distill={"student": {"width": 4}})
    skipped = skipped_methods(compression, model)
    assert set(skipped) == {STRUCTURED_PRUNING, DISTILLATION} and "no `net` attribute" in skipped[STRUCTURED_PRUNING]
    names = [p.name for p in plan(compression, skipped)]
    assert names == [
        "baseline",
        "prune-unstructured-50",
        "prune-unstructured-80",
        "quantize-dynamic-int8",
        "quantize-static-int8",
        "quantize-onnx-int8",
    ]
    assert skipped_methods(CompressionConfig(stages=["quantize"]), model) == {}

    # The whole LightningModule quantized is logged as TorchScript (its `trainer` raises outside a Trainer).
    variant = TorchVariant(
        name="q",
        stage="quantize",
        num_params=1,
        nonzero_params=1,
        params={},
        module=quantize.dynamic_int8(model.eval(), "x86"),
        scripted=True,
    )
    example = torch.randn(2, 8)
    with mlflow.start_run():
        uri = variant.log_model(example).model_uri
    assert mlflow.pytorch.load_model(uri)(example).shape == (2, 3)


def orchestrate(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([ORCHESTRATE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_train_and_pipeline_on_a_users_plain_lightning_modules(tmp_path, cli_env, tracking_uri):
    write_module(tmp_path)
    client = MlflowClient(cli_env["MLFLOW_TRACKING_URI"])
    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])  # an earlier test may have set another store

    out = orchestrate("train", *TARGETS, "scaling.num_workers=2", "trainer.max_epochs=4", cwd=tmp_path, env=cli_env)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "does not take data.val_fraction, data.test_fraction, data.seed, data.num_loader_workers" in log
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
    assert run.info.status == "FINISHED" and run.data.params["data.batch_size"] == "64"
    assert "data.val_fraction" not in run.data.params and "model.hidden_dim" not in run.data.params
    assert run.data.metrics["test/acc"] >= 0.9 and {"test/f1", "test/max_logit"} <= set(run.data.metrics)
    assert {"checkpoints/best.ckpt", "plots/confusion_matrix.png"} <= artifact_paths(client, run.info.run_id)
    [model] = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    loaded = mlflow.pytorch.load_model(f"models:/{model.model_id}")
    assert loaded(torch.zeros(1, 8)).shape == (1, 3)

    # The user's own config group files, with their own keys (all taken by their classes).
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "model").mkdir()
    (tmp_path / "conf" / "data" / "blobs.yaml").write_text(f"_target_: {DATA_TARGET}\nbatch_size: 32\n")
    (tmp_path / "conf" / "model" / "blobs.yaml").write_text(f"_target_: {MODEL_TARGET}\nwidth: 24\n")
    # Run as a user does, under a child subreaper: whatever the pipeline (its training run, then a pruning
    # fine-tune on Ray) leaves alive is reported, orphans included (a Ray Train controller was once left).
    out, left_behind = run_reaped(
        [
            ORCHESTRATE,
            "pipeline",
            "--config-dir",
            "conf",
            "data=blobs",
            "model=blobs",
            "scaling.num_workers=1",
            "trainer.max_epochs=4",
            "compression.prune.sparsities=[0.5]",
            "compression.prune.finetune_epochs=1",
            "compression.measure.num_repeats=30",
            "compression.measure.num_throughput_repeats=3",
            "compression.max_acc_drop=0.05",
        ],
        cwd=tmp_path,
        env=cli_env,
        timeout=1200,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert left_behind == [], left_behind  # no process of the run's Ray session 5 s after the command exits
    text = " ".join((out.stdout + out.stderr).split())
    assert "structured pruning skipped: BlobsClassifier has no `net` attribute" in text
    assert "distillation skipped: BlobsClassifier is not a trainers ClassifierLitModule" in text
    [parent] = client.search_runs([run.info.experiment_id], "tags.`orchestrator.kind` = 'pipeline'")
    assert parent.info.status == "FINISHED" and parent.data.params["model.width"] == "24"
    assert "structured pruning" in parent.data.tags["orchestrator.skipped_methods"]
    variants = {
        r.data.tags["orchestrator.variant"]: r
        for r in client.search_runs(
            [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`orchestrator.kind` = 'compress'"
        )
    }
    assert set(variants) == {"baseline", "prune-unstructured-50", "quantize-dynamic-int8", "quantize-static-int8", "quantize-onnx-int8"}
    errors = {name: run.data.tags.get("orchestrator.error") for name, run in variants.items()}
    assert all(r.info.status == "FINISHED" for r in variants.values()), errors
    assert variants["prune-unstructured-50"].data.metrics["nonzero_params"] < variants["baseline"].data.metrics["num_params"]
    assert parent.data.tags.get("orchestrator.champion") in variants
