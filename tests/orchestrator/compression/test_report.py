"""The Pareto front and the summary table follow the pipeline's quality metric (pure logic)."""

from __future__ import annotations

from orchestrator.compression.gate import VariantResult
from orchestrator.compression.quality import ClassifierQuality, LanguageModelQuality
from orchestrator.compression.report import pareto_front, summary_rows


def test_pareto_front_keeps_the_higher_accuracy_or_the_lower_perplexity():
    # (size, quality): the 60-byte point is beaten by the 50-byte one either way
    assert pareto_front([(100, 0.9), (50, 0.85), (60, 0.8), (10, 0.5)]) == [(10, 0.5), (50, 0.85), (100, 0.9)]
    assert pareto_front([(100, 5.0), (50, 5.5), (60, 6.0), (10, 9.0)], higher_is_better=False) == [(10, 9.0), (50, 5.5), (100, 5.0)]


def test_summary_table_has_the_quality_columns_of_the_pipeline():
    metrics = {"test/loss": 1.6, "test/ppl": 5.0, "ppl_increase": 0.02, "size_bytes": 10.0}
    table = summary_rows([VariantResult("quantize-dynamic-int8", "quantize", "r1", metrics=metrics)], LanguageModelQuality())
    assert table["test/ppl"] == [5.0] and table["ppl_increase"] == [0.02] and table["passed"] == [True]
    assert "test/acc" not in table and "acc_drop" not in table
    assert {"test/acc", "acc_drop"} <= set(summary_rows([], ClassifierQuality(10)))


def test_the_variants_table_fits_80_columns_with_every_variant_and_figure_whole(pipe_console):
    from tables import read_table

    from orchestrator.compression.gate import Decision, VariantResult
    from orchestrator.compression.quality import ClassifierQuality
    from orchestrator.compression.report import print_variants

    def metrics(acc, size, p50):
        return {"test/acc": acc, "acc_drop": 0.9 - acc, "size_bytes": size, "latency_ms_p50": p50}

    baseline = VariantResult("baseline", "baseline", "r0", metrics=metrics(0.9, 40960, 2.0))
    champion = VariantResult("quantize-onnx-int8", "quantize", "r1", metrics=metrics(0.89, 10240, 0.5))
    refused = VariantResult(
        "prune-structured-50", "prune", "r2", metrics=metrics(0.7, 20480, 1.0), failed_checks=["acc_drop 0.2000 > 0.0100"]
    )
    failed = VariantResult("distill", "distill", "r3", status="FAILED", error="out of memory")
    print_variants(
        [baseline, champion, refused, failed],
        Decision(champion, False, "smallest that passes"),
        "3",
        "model",
        ClassifierQuality(num_classes=10),
    )
    text = pipe_console.getvalue()

    headers, rows, _ = read_table(text)
    assert headers == ["variant", "test/acc", "acc_drop", "KiB", "smaller", "p50 ms", "faster", "gate"]
    assert rows[1] == ["quantize-onnx-int8*", "0.8900", "+0.0100", "10", "4.00x", "0.500", "4.00x", "pass"]
    assert rows[2][-1] == "fail" and rows[3] == ["distill", "-", "-", "-", "-", "-", "-", "FAILED"]
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "prune-structured-50 fails the gate: acc_drop 0.2000 > 0.0100" in text and "distill FAILED: out of memory" in text
