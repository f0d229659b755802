"""End-to-end: `orchestrate compress` as a user types it, on a run of `orchestrate train`, with the
tracking store left to its default (no MLFLOW_TRACKING_URI): source.run_id, then source.checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))


def orchestrate(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    out = subprocess.run([ORCHESTRATE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def children(client: MlflowClient, parent) -> dict[str, object]:
    runs = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {r.data.tags["orchestrator.variant"]: r for r in runs}


@pytest.mark.e2e
def test_compress_a_train_run_by_id_and_by_checkpoint_in_the_default_store(tmp_path, cli_env):
    env = {k: v for k, v in cli_env.items() if k != "MLFLOW_TRACKING_URI"}  # the default: ./mlruns.db
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    orchestrate(
        "train",
        "data=digits",
        "model=mlp",
        "model.hidden_dim=64",
        "trainer.max_epochs=2",
        "scaling.num_workers=1",
        "tracking.log_model=false",
        cwd=tmp_path,
        env=env,
    )
    (trained,) = client.search_runs(["1"], "tags.`orchestrator.kind` = 'train'")

    # by run id: the model comes from the run (hidden 64, not this command's pipeline default of 512),
    # and the student is a quarter of it
    orchestrate(
        "compress",
        f"source.run_id={trained.info.run_id}",
        "compression.stages=[quantize,distill]",
        "compression.quantize.methods=[dynamic]",
        "compression.distill.epochs=1",
        cwd=tmp_path,
        env=env,
    )
    (parent,) = client.search_runs(["1"], f"tags.`orchestrator.source_run_id` = '{trained.info.run_id}'")
    assert parent.info.status == "FINISHED" and parent.data.tags["orchestrator.kind"] == "pipeline"
    variants = children(client, parent)
    assert sorted(variants) == ["baseline", "distill-hidden_dim16", "quantize-dynamic-int8"]
    assert all(r.info.status == "FINISHED" and "size_bytes" in r.data.metrics for r in variants.values())
    assert variants["distill-hidden_dim16"].data.metrics["num_params"] < variants["baseline"].data.metrics["num_params"] / 3
    champion = client.get_model_version_by_alias("orchestrator-model", "champion")
    assert champion.run_id in {r.info.run_id for r in variants.values()}
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to MLflow's own default store

    # by checkpoint file: the model settings come from the command line
    checkpoint = client.download_artifacts(trained.info.run_id, "checkpoints/best.ckpt", str(tmp_path))
    orchestrate(
        "compress",
        f"source.checkpoint={checkpoint}",
        "model.hidden_dim=64",
        "compression.stages=[quantize]",
        "compression.quantize.methods=[onnx]",
        cwd=tmp_path,
        env=env,
    )
    parents = client.search_runs(["1"], "tags.`orchestrator.kind` = 'pipeline'")
    (by_file,) = [p for p in parents if "orchestrator.source_run_id" not in p.data.tags]
    assert by_file.info.status == "FINISHED"
    variants = children(client, by_file)
    assert sorted(variants) == ["baseline", "quantize-onnx-int8"]
    assert all(r.info.status == "FINISHED" for r in variants.values())
    # int8 weights; at hidden 64 the ONNX graph itself is a third of the file
    assert variants["quantize-onnx-int8"].data.metrics["size_bytes"] < variants["baseline"].data.metrics["size_bytes"] / 2
