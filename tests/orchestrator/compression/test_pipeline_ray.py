"""The compression pipeline for real: local Ray (2 workers, gloo), MLflow on SQLite, digits and text.

One pipeline run proves the stages, the child runs and their metrics, the Pareto figure, the summary
table and the registry; then `compress source.run_id=` on its training run proves the second verb,
a failing stage (its run FAILED, the others go on) and the baseline fallback of the gate. A second
pipeline fine-tunes MiniLM on word-choice reviews and distils and quantizes it.
"""

from __future__ import annotations

import mlflow
import pytest
import torch
from compose import compose_config
from mlflow import MlflowClient
from text_samples import minilm_path, write_corpus, write_reviews

from orchestrator.compression import quantize
from orchestrator.compression.from_run import run_compress
from orchestrator.compression.measure import LM_METRIC_KEYS, METRIC_KEYS
from orchestrator.compression.pipeline import run_pipeline
from orchestrator.errors import ConfigError

pytestmark = pytest.mark.ray

FAST = [
    "data=digits",
    "model=mlp",
    "model.hidden_dim=96",
    "trainer.max_epochs=4",
    "callbacks=none",
    "compression.prune.sparsities=[0.8]",
    "compression.prune.channel_ratios=[0.5]",
    "compression.prune.finetune_epochs=2",
    "compression.distill.epochs=4",
    "compression.distill.student.hidden_dim=32",
    "compression.measure.num_repeats=100",
    "compression.measure.num_throughput_repeats=10",
    "compression.max_acc_drop=0.05",
    "compression.registered_model_name=digits-mlp",
]


def children(client: MlflowClient, parent_id: str, experiment_id: str):
    return client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")


def artifacts(client: MlflowClient, run_id: str) -> set[str]:
    nested = {a.path for d in ("plots", "summary") for a in client.list_artifacts(run_id, d)}
    return {a.path for a in client.list_artifacts(run_id)} | nested


@pytest.mark.timeout(1800)  # ~4 min on an idle 2-core machine; 12 min were measured under a load average of 60
def test_pipeline_then_compress_from_its_training_run(ray_cluster, tracking_uri, tmp_path, monkeypatch):
    outcome = run_pipeline(compose_config("pipeline", FAST, tmp_path))
    client = MlflowClient(tracking_uri)
    parent = client.get_run(outcome.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["orchestrator.kind"] == "pipeline"
    assert {"plots/pareto.png", "summary/variants.json", "config.yaml"} <= artifacts(client, outcome.run_id)

    runs = {
        r.data.tags.get("orchestrator.variant", r.data.tags["orchestrator.kind"]): r
        for r in children(client, outcome.run_id, outcome.experiment_id)
    }
    assert set(runs) == {
        "train",
        "baseline",
        "prune-unstructured-80",
        "prune-structured-50",
        "quantize-dynamic-int8",
        "quantize-static-int8",
        "quantize-onnx-int8",
        "distill-hidden_dim32",
    }
    assert runs["train"].info.run_id == outcome.train_run_id
    for name, run in runs.items():
        assert run.info.status == "FINISHED", name
        if name == "train":
            continue
        assert run.data.tags["orchestrator.kind"] == "compress"
        assert run.data.tags["orchestrator.stage"] == name.split("-")[0]
        assert set(METRIC_KEYS) <= set(run.data.metrics), name
    m = {name: run.data.metrics for name, run in runs.items()}
    base = m["baseline"]
    assert base["test/acc"] > 0.85 and base["num_params"] == base["nonzero_params"]
    # prune: as sparse / as narrow as configured, after a fine-tune on Ray logged into the variant's run
    assert m["prune-unstructured-80"]["nonzero_params"] < 0.25 * base["num_params"]
    assert m["prune-structured-50"]["num_params"] < 0.4 * base["num_params"]
    assert m["prune-structured-50"]["size_bytes"] < 0.5 * base["size_bytes"]
    assert len(client.get_metric_history(runs["prune-structured-50"].info.run_id, "val/acc")) == 2
    # quantize: int8 artifacts ~4x smaller; distill: the small student
    for name in ("quantize-dynamic-int8", "quantize-static-int8", "quantize-onnx-int8"):
        assert m[name]["size_bytes"] < base["size_bytes"] / 2.5, name  # a small model: fixed overhead weighs
        assert m[name]["acc_drop"] < 0.03, name
    assert m["distill-hidden_dim32"]["num_params"] < 0.3 * base["num_params"] and m["distill-hidden_dim32"]["test/acc"] > 0.7
    assert len(client.get_metric_history(runs["distill-hidden_dim32"].info.run_id, "train/loss")) == 4

    # every variant's logged model loads and predicts
    digits = torch.randn(3, 1, 8, 8)
    for name, run in runs.items():
        if name == "train":
            continue
        logged = mlflow.search_logged_models(
            experiment_ids=[outcome.experiment_id], output_format="list", filter_string=f"source_run_id = '{run.info.run_id}'"
        )
        assert len(logged) == 1, name
        output = mlflow.pyfunc.load_model(f"models:/{logged[0].model_id}").predict(digits.numpy())
        output = output["logits"] if isinstance(output, dict) else output  # ONNX models answer by output name
        assert output.shape == (3, 10), name

    # the champion is the smallest variant that passes; the registry points at it
    decision = outcome.compression.decision
    passing = [r for r in outcome.compression.results if r.passed and r.stage != "baseline"]
    assert not decision.fallback and decision.champion.name == min(passing, key=lambda r: r.metrics["size_bytes"]).name
    version = client.get_model_version_by_alias("digits-mlp", "champion")
    assert version.tags["orchestrator.variant"] == decision.champion.name
    assert parent.data.tags["orchestrator.champion"] == decision.champion.name

    # compress source.run_id=<the training run>: static int8 made to fail, a latency limit nobody meets
    def broken(*args, **kwargs):
        raise RuntimeError("calibration exploded")

    monkeypatch.setattr(quantize, "static_int8", broken)
    run_id, experiment_id, _, compressed = run_compress(
        compose_config(
            "compress",
            [
                f"source.run_id={outcome.train_run_id}",
                "compression.stages=[quantize]",
                "compression.registered_model_name=digits-mlp",
                "compression.quantize.methods=[static,onnx]",
                "compression.max_latency_ms=0.000001",
                "compression.measure.num_repeats=50",
                "compression.measure.num_throughput_repeats=5",
            ],
            tmp_path,
        )
    )
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["orchestrator.source_run_id"] == outcome.train_run_id
    assert parent.data.params["model.hidden_dim"] == "96"  # rebuilt from the source run's config.yaml
    statuses = {r.data.tags["orchestrator.variant"]: r.info.status for r in children(client, run_id, experiment_id)}
    assert statuses == {"baseline": "FINISHED", "quantize-static-int8": "FAILED", "quantize-onnx-int8": "FINISHED"}
    assert parent.data.tags["orchestrator.failed_variants"] == "quantize-static-int8"
    assert compressed.decision.fallback and compressed.decision.champion.name == "baseline"
    assert "no compressed variant passed" in parent.data.tags["orchestrator.gate"]
    assert client.get_model_version_by_alias("digits-mlp", "champion").tags["orchestrator.variant"] == "baseline"


def text_pipeline(tmp_path, *overrides: str):
    """A text model's pipeline with stages quantize and distill, on 1 worker (the digits pipeline above proves
    2-worker DDP; here the fixed costs would double): its outcome and its child runs by variant name."""
    outcome = run_pipeline(
        compose_config(
            "pipeline",
            [
                f"data.cache_dir={tmp_path / 'cache'}",
                "callbacks=none",
                "scaling.num_workers=1",
                "compression.stages=[quantize,distill]",
                "compression.distill.epochs=2",
                "compression.measure.num_repeats=30",
                "compression.measure.num_throughput_repeats=3",
                *overrides,
            ],
            tmp_path,
        )
    )
    runs = {
        r.data.tags.get("orchestrator.variant", r.data.tags["orchestrator.kind"]): r
        for r in children(MlflowClient(), outcome.run_id, outcome.experiment_id)
    }
    return outcome, runs


def review_ids():
    """Two padded MiniLM token-id rows ("[CLS] great movie [SEP]", "[CLS] awful film [SEP]")."""
    return torch.tensor([[101, 2307, 3185, 102] + [0] * 12, [101, 9643, 2143, 102] + [0] * 12]).numpy()


@pytest.mark.timeout(1200)  # 2.4 min measured here (1 worker); 5.6 min under a load average of 13
def test_pipeline_distils_and_quantizes_a_pretrained_text_encoder(ray_cluster, tracking_uri, tmp_path):
    outcome, runs = text_pipeline(
        tmp_path,
        "data=text_csv",
        f"data.path={write_reviews(tmp_path, 160)}",
        "data.max_length=16",
        "data.batch_size=16",
        "model=pretrained_encoder",
        f"model.path={minilm_path()}",
        "optimizer=adamw",
        "optimizer.lr=0.0005",
        "trainer.max_epochs=2",
        "compression.max_acc_drop=0.05",
        "compression.registered_model_name=reviews-minilm",
    )
    client = MlflowClient(tracking_uri)
    # conf/compression_model/pretrained_encoder.yaml: int8 through torch.ao and ONNX Runtime, a 3-layer student
    assert set(runs) == {"train", "baseline", "quantize-dynamic-int8", "quantize-onnx-int8", "distill-num_layers3"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    m = {name: run.data.metrics for name, run in runs.items() if name != "train"}
    assert all(set(METRIC_KEYS) <= set(metrics) for metrics in m.values())
    base, student = m["baseline"], m["distill-num_layers3"]
    assert base["test/acc"] >= 0.9
    assert student["num_params"] < 0.8 * base["num_params"] and student["size_bytes"] < 0.8 * base["size_bytes"]
    assert student["test/acc"] >= 0.9 and len(client.get_metric_history(runs["distill-num_layers3"].info.run_id, "train/loss")) == 2
    assert runs["distill-num_layers3"].data.params["compression.distill.student.num_layers"] == "3"
    assert m["quantize-dynamic-int8"]["size_bytes"] < 0.75 * base["size_bytes"]  # the word embeddings stay float
    assert m["quantize-onnx-int8"]["size_bytes"] < 0.3 * base["size_bytes"]
    for name in ("quantize-dynamic-int8", "quantize-onnx-int8", "distill-num_layers3"):
        assert m[name]["acc_drop"] <= 0.05 and m[name]["latency_ms_p50"] > 0, name
    decision = outcome.compression.decision
    assert not decision.fallback and decision.champion.name == "quantize-onnx-int8"
    champion = client.get_model_version_by_alias("reviews-minilm", "champion")
    output = mlflow.pyfunc.load_model("models:/reviews-minilm@champion").predict(review_ids())
    assert champion.tags["orchestrator.variant"] == "quantize-onnx-int8" and output["logits"].shape == (2, 2)


@pytest.mark.timeout(900)  # 2.8 min measured here (1 worker, two Ray fits) beside another test run on the 2 cores
def test_pipeline_compresses_a_causal_language_model_gated_on_perplexity(ray_cluster, tracking_uri, tmp_path):
    outcome, runs = text_pipeline(
        tmp_path,
        "data=text_file",
        f"data.path={write_corpus(tmp_path, 300)}",
        "data.block_size=32",
        "model=causal_lm",
        "model.d_model=64",
        "model.dropout=0.0",
        "optimizer=adamw",
        "optimizer.lr=0.003",
        "trainer.max_epochs=3",
        "compression.registered_model_name=corpus-gpt",
    )
    client = MlflowClient(tracking_uri)
    # conf/compression_model/causal_lm.yaml: int8 through torch.ao and ONNX Runtime, a 1-block student
    assert set(runs) == {"train", "baseline", "quantize-dynamic-int8", "quantize-onnx-int8", "distill-num_layers1"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    m = {name: run.data.metrics for name, run in runs.items() if name != "train"}
    for name, metrics in m.items():  # every variant on the language-model keys, none on the classifier's
        assert set(LM_METRIC_KEYS) <= set(metrics) and not {"test/acc", "acc_drop"} & set(metrics), name
    base = m["baseline"]
    assert base["test/ppl"] == pytest.approx(runs["train"].data.metrics["test/ppl"], rel=1e-3)  # the training run's own number
    assert base["test/ppl"] < 15 and base["ppl_increase"] == 0.0  # a uniform guess over the ~40 characters: ~40
    for name, metrics in m.items():
        assert metrics["ppl_increase"] == pytest.approx(metrics["test/ppl"] / base["test/ppl"] - 1.0, abs=1e-6), name
    student = m["distill-num_layers1"]
    assert student["num_params"] < 0.7 * base["num_params"] and student["size_bytes"] < 0.7 * base["size_bytes"]
    assert len(client.get_metric_history(runs["distill-num_layers1"].info.run_id, "train/loss")) == 2
    assert student["test/ppl"] < 2 * base["test/ppl"]  # it learnt from the teacher (an untrained GPT is far above)
    for name in ("quantize-dynamic-int8", "quantize-onnx-int8"):
        assert m[name]["size_bytes"] < 0.5 * base["size_bytes"] and m[name]["ppl_increase"] < 0.05, name

    # the gate: passed exactly when ppl_increase <= compression.max_ppl_increase (0.05); the smallest passing variant wins
    results = {r.name: r for r in outcome.compression.results}
    for name, result in results.items():
        assert result.passed == (result.metrics["ppl_increase"] <= 0.05), (name, result.failed_checks)
    decision = outcome.compression.decision
    passing = [r for r in results.values() if r.passed and r.stage != "baseline"]
    assert not decision.fallback and decision.champion.name == min(passing, key=lambda r: r.metrics["size_bytes"]).name
    parent = client.get_run(outcome.run_id)
    assert parent.data.tags["orchestrator.champion"] == decision.champion.name
    assert parent.data.metrics["champion/ppl_increase"] == decision.champion.metrics["ppl_increase"]
    assert {"plots/pareto.png", "summary/variants.json"} <= artifacts(client, outcome.run_id)
    assert client.get_model_version_by_alias("corpus-gpt", "champion").tags["orchestrator.variant"] == decision.champion.name
    output = mlflow.pyfunc.load_model("models:/corpus-gpt@champion").predict(torch.zeros(1, 32, dtype=torch.int64).numpy())
    output = output["logits"] if isinstance(output, dict) else output
    assert output.shape[:2] == (1, 32)  # next-token logits at every position of a block


def test_compress_refuses_bad_sources_before_work_starts(tracking_uri, tmp_path):
    with pytest.raises(ConfigError, match="source.run_id: no MLflow run 'nope'"):
        run_compress(compose_config("compress", ["source.run_id=nope"], tmp_path))
    with pytest.raises(ConfigError, match="source.checkpoint: no checkpoint file"):
        run_compress(compose_config("compress", [f"source.checkpoint={tmp_path / 'missing.ckpt'}"], tmp_path))
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="source.checkpoint: .* is not a readable checkpoint"):
        run_compress(compose_config("compress", [f"source.checkpoint={junk}"], tmp_path))
    client = MlflowClient(tracking_uri)
    bare = client.create_run(client.create_experiment("bare")).info.run_id
    client.set_terminated(bare)
    with pytest.raises(ConfigError, match="has no config.yaml and checkpoints/best.ckpt"):
        run_compress(compose_config("compress", [f"source.run_id={bare}"], tmp_path))
