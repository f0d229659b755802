"""The gate: which variants are good enough to deploy, and which one becomes the champion."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.config.compression import CompressionConfig

# The quality change a variant logs (quality.py: a classifier's or a language model's) and its limit.
QUALITY_LIMITS = {"acc_drop": "max_acc_drop", "ppl_increase": "max_ppl_increase"}


@dataclass
class VariantResult:
    """A variant's outcome: its child run, its metrics, and the gate's verdict.

    Attributes:
        name: the variant's name. stage: the stage that made it.
        run_id: its MLflow child run.
        status: FINISHED or FAILED.
        metrics: what measure() gave (empty when it failed).
        model_uri: where its logged model is (models:/<id>), for registration.
        error: why it failed.
        failed_checks: the gate's reasons to refuse it (empty: it passes).
    """

    name: str
    stage: str
    run_id: str
    status: str = "FINISHED"
    metrics: dict[str, float] = field(default_factory=dict)
    model_uri: str | None = None
    error: str | None = None
    failed_checks: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "FINISHED" and not self.failed_checks


def check(result: VariantResult, compression: CompressionConfig) -> list[str]:
    """The gate's reasons to refuse one measured variant (empty: it passes)."""
    if result.status != "FINISHED":
        return [f"failed: {result.error}"]
    metrics = result.metrics
    reasons = []
    for change, limit in QUALITY_LIMITS.items():
        if change in metrics and metrics[change] > getattr(compression, limit):
            reasons.append(f"{change} {metrics[change]:.4f} > compression.{limit} {getattr(compression, limit):g}")
    if compression.max_size_bytes is not None and metrics["size_bytes"] > compression.max_size_bytes:
        reasons.append(f"size_bytes {metrics['size_bytes']:.0f} > compression.max_size_bytes {compression.max_size_bytes}")
    if compression.max_latency_ms is not None and metrics["latency_ms_p50"] > compression.max_latency_ms:
        reasons.append(f"latency_ms_p50 {metrics['latency_ms_p50']:.3f} > compression.max_latency_ms {compression.max_latency_ms:g}")
    return reasons


@dataclass
class Decision:
    """The champion and why: `fallback` is true when no compressed variant passed (the baseline keeps it)."""

    champion: VariantResult | None
    fallback: bool
    reason: str


def choose(results: list[VariantResult], compression: CompressionConfig) -> Decision:
    """Gate every variant, then pick the smallest passing compressed variant; else the baseline."""
    for result in results:
        result.failed_checks = check(result, compression)
    candidates = [r for r in results if r.stage != "baseline" and r.passed and r.model_uri]
    if candidates:
        best = min(candidates, key=lambda r: (r.metrics["size_bytes"], r.metrics["latency_ms_p50"]))
        return Decision(best, False, f"{best.name} is the smallest variant that passes the gate")
    baseline = next((r for r in results if r.stage == "baseline" and r.status == "FINISHED" and r.model_uri), None)
    compressed = [r for r in results if r.stage != "baseline"]
    why = "; ".join(f"{r.name}: {', '.join(r.failed_checks)}" for r in compressed) or "no compressed variant was made"
    if baseline is None:
        return Decision(None, True, f"no compressed variant passed the gate ({why}) and the baseline failed too")
    return Decision(baseline, True, f"no compressed variant passed the gate, so the baseline keeps the champion alias: {why}")


def register(decision: Decision, compression: CompressionConfig, tracking_uri: str) -> str | None:
    """Register the champion's model in the MLflow Model Registry and point the alias at it; its version."""
    import mlflow
    from mlflow import MlflowClient

    if decision.champion is None:
        return None
    version = mlflow.register_model(decision.champion.model_uri, compression.registered_model_name)
    client = MlflowClient(tracking_uri)
    client.set_registered_model_alias(compression.registered_model_name, compression.champion_alias, version.version)
    client.set_model_version_tag(compression.registered_model_name, version.version, "orchestrator.variant", decision.champion.name)
    return version.version
