"""What the pipeline shows: the quality-vs-size/latency Pareto figure (test/acc of classifiers, test/ppl
of language models), the summary table (an MLflow table artifact) and the rich table of every variant
in the terminal."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from orchestrator.compression.gate import Decision, VariantResult  # noqa: E402
from orchestrator.compression.quality import Quality  # noqa: E402
from orchestrator.console import Column, print_table  # noqa: E402


def columns(quality: Quality) -> tuple[str, ...]:
    """The summary table's columns: the variant, its quality metric and change, size, speed, the gate."""
    return (
        "variant",
        "stage",
        "status",
        quality.metric,
        quality.change,
        "size_bytes",
        "num_params",
        "nonzero_params",
        "latency_ms_p50",
        "latency_ms_p95",
        "throughput_sps",
        "passed",
        "why",
        "run_id",
    )


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool = True) -> list[tuple[float, float]]:
    """The points no other point beats on both cost (x, lower is better) and quality (y: higher is
    better, or lower, a perplexity, when not `higher_is_better`)."""
    sign = 1.0 if higher_is_better else -1.0
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -sign * p[1])):
        if sign * y > best:
            front.append((x, y))
            best = sign * y
    return front


def pareto_figure(results: list[VariantResult], quality: Quality):
    """Two panels: `quality.metric` against size_bytes and against latency_ms_p50, the Pareto front drawn."""
    measured = [r for r in results if r.metrics]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, key, label in ((axes[0], "size_bytes", "artifact size (bytes)"), (axes[1], "latency_ms_p50", "latency p50 at batch 1 (ms)")):
        points = [(r.metrics[key], r.metrics[quality.metric]) for r in measured]
        for result, (x, y) in zip(measured, points, strict=False):
            axis.scatter(x, y, s=36, color="tab:green" if result.passed else "tab:red", zorder=3)
            axis.annotate(result.name, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        front = pareto_front(points, quality.higher_is_better)
        if front:
            axis.step(*zip(*front, strict=False), where="post", color="tab:blue", alpha=0.6, label="Pareto front")
            axis.legend(loc="lower right" if quality.higher_is_better else "upper right")
        axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel(quality.metric)
        axis.grid(alpha=0.3)
    fig.suptitle(f"{quality.metric} vs size and latency (green: passes the gate)")
    fig.tight_layout()
    return fig


def summary_rows(results: list[VariantResult], quality: Quality) -> dict[str, list]:
    """The summary table, column-wise (for mlflow.log_table)."""
    table: dict[str, list] = {column: [] for column in columns(quality)}
    for r in results:
        row = {
            "variant": r.name,
            "stage": r.stage,
            "status": r.status,
            "passed": r.passed,
            "why": "; ".join(r.failed_checks),
            "run_id": r.run_id,
        }
        for column in table:
            table[column].append(row.get(column, r.metrics.get(column)))
    return table


def print_variants(
    results: list[VariantResult],
    decision: Decision,
    version: str | None,
    model_name: str,
    quality: Quality,
    skipped: dict[str, str] | None = None,
) -> None:
    """The rich table of every variant, then the gate's reasons and the champion decision in plain words."""
    from orchestrator.console import console  # looked up when called: tests point it at a pipe

    table_columns = [
        Column("variant", required=True),
        *(Column(h, justify="right") for h in (quality.metric, quality.change, "KiB", "smaller", "p50 ms", "faster")),
        Column("gate"),
    ]
    baseline = next((r.metrics for r in results if r.stage == "baseline" and r.metrics), {})
    rows, styles = [], []
    for r in results:
        if not r.metrics:
            rows.append([r.name, "-", "-", "-", "-", "-", "-", "FAILED"])
            styles.append("red")
            continue
        m = r.metrics
        smaller = f"{baseline['size_bytes'] / m['size_bytes']:.2f}x" if baseline else "-"
        faster = f"{baseline['latency_ms_p50'] / m['latency_ms_p50']:.2f}x" if baseline else "-"
        champion = decision.champion is r
        rows.append(
            [
                f"{r.name}*" if champion else r.name,
                f"{m[quality.metric]:.4f}",
                f"{m[quality.change]:+.4f}",
                f"{m['size_bytes'] / 1024:.0f}",
                smaller,
                f"{m['latency_ms_p50']:.3f}",
                faster,
                "pass" if r.passed else "fail",
            ]
        )
        styles.append("bold green" if champion else None if r.passed else "yellow")
    print_table(
        "compression variants (size and speed against the baseline)",
        table_columns,
        rows,
        see_all="summary/variants.json in the parent run",
        row_styles=styles,
    )
    console.print("  * champion")
    for r in results:
        if r.failed_checks and r.status == "FINISHED":
            console.print(f"  {r.name} fails the gate: {'; '.join(r.failed_checks)}")
    for method, reason in (skipped or {}).items():
        console.print(f"  {method} skipped: {reason}")
    failed = [r for r in results if r.status != "FINISHED"]
    for r in failed:
        console.print(f"  [bold red]{r.name} FAILED:[/] {r.error} (run {r.run_id})")
    if decision.champion is None:
        console.print(f"[bold red]no model registered:[/] {decision.reason}")
    elif decision.fallback:
        console.print(f"[bold yellow]{decision.reason}[/]")
        console.print(f"registered {model_name} version {version} (the baseline) with alias champion")
    else:
        console.print(f"[bold green]champion:[/] {decision.reason}; registered {model_name} version {version} with alias champion")


def print_compression_summary(
    title: str, run_id: str, experiment_id: str, tracking_uri: str, outcome, where: dict[str, str] | None = None
) -> None:
    """The end-of-run summary of `pipeline` and `compress`: the champion's quality and change, which
    variant it is and why, the variants that failed (`outcome`: a CompressionOutcome)."""
    from orchestrator.console import print_run_summary

    decision = outcome.decision
    where = {**(where or {}), "champion": f"{decision.champion.name} ({decision.reason})" if decision.champion else decision.reason}
    if outcome.failed:
        where["failed variants"] = ", ".join(r.name for r in outcome.failed)
    champion = decision.champion.metrics if decision.champion else {}
    quality = outcome.quality
    print_run_summary(
        title, run_id, experiment_id, tracking_uri, {k: champion[k] for k in (quality.metric, quality.change) if k in champion}, where
    )
