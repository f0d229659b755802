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
