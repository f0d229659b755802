"""The gate and the champion choice (pure logic): classifiers on acc_drop, language models on ppl_increase."""

from __future__ import annotations

from orchestrator.compression.gate import VariantResult, choose
from orchestrator.config.compression import CompressionConfig


def result(name, stage, change, size, latency=0.1, status="FINISHED", key="acc_drop"):
    metrics = {key: change, "size_bytes": size, "latency_ms_p50": latency} if status == "FINISHED" else {}
    return VariantResult(
        name,
        stage,
        run_id=name,
        status=status,
        metrics=metrics,
        model_uri=f"models:/{name}",
        error=None if status == "FINISHED" else "boom",
    )


def variants():
    return [
        result("baseline", "baseline", 0.0, 1000, 0.20),
        result("onnx", "quantize", 0.004, 260, 0.05),
        result("dynamic", "quantize", 0.002, 280, 0.30),
        result("pruned", "prune", 0.02, 500, 0.15),
        result("broken", "distill", 0.0, 10, status="FAILED"),
    ]


def test_smallest_passing_variant_wins():
    decision = choose(variants(), CompressionConfig(max_acc_drop=0.01))
    assert decision.champion.name == "onnx" and not decision.fallback


def test_thresholds_that_let_exactly_one_pass():
    results = variants()
    decision = choose(results, CompressionConfig(max_acc_drop=0.003, max_latency_ms=0.5))
    assert decision.champion.name == "dynamic"
    assert [r.name for r in results if r.passed and r.stage != "baseline"] == ["dynamic"]
    assert results[1].failed_checks == ["acc_drop 0.0040 > compression.max_acc_drop 0.003"]
    assert results[4].failed_checks == ["failed: boom"]


def test_baseline_keeps_champion_and_says_why_when_none_passes():
    decision = choose(variants(), CompressionConfig(max_acc_drop=0.01, max_size_bytes=100))
    assert decision.champion.name == "baseline" and decision.fallback
    assert "no compressed variant passed" in decision.reason
    assert "onnx: size_bytes 260 > compression.max_size_bytes 100" in decision.reason
    assert "broken: failed: boom" in decision.reason


def test_language_models_are_gated_on_their_perplexity_increase():
    results = [
        result("baseline", "baseline", 0.0, 1000, key="ppl_increase"),
        result("onnx", "quantize", 0.30, 250, key="ppl_increase"),  # the smallest, but 30% more perplexed
        result("dynamic", "quantize", 0.01, 300, key="ppl_increase"),
        result("student", "distill", 0.08, 500, key="ppl_increase"),
    ]
    # max_acc_drop=0 would refuse any classifier that loses accuracy; LM variants have no acc_drop
    decision = choose(results, CompressionConfig(max_acc_drop=0.0, max_ppl_increase=0.05))
    assert decision.champion.name == "dynamic" and not decision.fallback
    assert [r.name for r in results if r.passed] == ["baseline", "dynamic"]
    assert results[1].failed_checks == ["ppl_increase 0.3000 > compression.max_ppl_increase 0.05"]
    assert results[3].failed_checks == ["ppl_increase 0.0800 > compression.max_ppl_increase 0.05"]

    assert choose(results, CompressionConfig(max_ppl_increase=0.5)).champion.name == "onnx"
    decision = choose(results, CompressionConfig(max_ppl_increase=0.005))
    assert decision.fallback and decision.champion.name == "baseline"
    assert "dynamic: ppl_increase 0.0100 > compression.max_ppl_increase 0.005" in decision.reason
