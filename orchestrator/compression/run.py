"""Compress one trained checkpoint under a parent run: stages -> gate -> registry -> Pareto figure,
summary table and terminal report. Shared by `orchestrate pipeline` and `orchestrate compress`."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.compression.gate import Decision, VariantResult, choose, register
from orchestrator.compression.quality import Quality
from orchestrator.config.compression import CompressionConfig
from orchestrator.tracking.tags import (
    TAG_CHAMPION,
    TAG_FAILED_VARIANTS,
    TAG_GATE,
    TAG_SKIPPED,
)

log = logging.getLogger(__name__)


@dataclass
class CompressionOutcome:
    """The variants, the champion decision and its registered version, how variants were scored, and
    the methods skipped because the model does not offer what they need (method -> why)."""

    quality: Quality
    results: list[VariantResult] = field(default_factory=list)
    decision: Decision | None = None
    registered_version: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[VariantResult]:
        return [r for r in self.results if r.status != "FINISHED"]


def work_folder(storage_dir: str, run_id: str) -> Path:
    """A folder for files Ray workers read (the teacher checkpoint, warm-start weights): under the Ray
    storage dir, which is shared storage on a multi-node cluster; a local temporary folder when the
    storage dir is a URI (s3://), which only a local cluster can read."""
    if "://" in storage_dir:
        log.warning("paths.storage_dir is a URI; compression fine-tunes read their weights from a local folder")
        return Path(tempfile.mkdtemp(prefix=f"orchestrator-compression-{run_id}-"))
    folder = Path(storage_dir).expanduser().resolve() / "compression" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def compress_checkpoint(
    config: dict[str, Any], compression: CompressionConfig, checkpoint: Path, parent_run_id: str, experiment_id: str, tracking_uri: str
) -> CompressionOutcome:
    """Make and measure every variant of `checkpoint` as child runs of `parent_run_id`, gate them,
    register the champion, and log the Pareto figure and the summary table into the parent run."""
    import mlflow
    from mlflow import MlflowClient

    from orchestrator.compression.measure import held_out_split
    from orchestrator.compression.quality import quality_of
    from orchestrator.compression.report import (
        pareto_figure,
        print_variants,
        summary_rows,
    )
    from orchestrator.compression.stages import (
        StageContext,
        run_stages,
        skipped_methods,
    )
    from orchestrator.training.evaluate import load_model

    mlflow.set_tracking_uri(tracking_uri)  # the child runs, their models and the registry use MLflow's fluent API
    work_dir = work_folder(config["paths"]["storage_dir"], parent_run_id)
    teacher = work_dir / "trained.ckpt"
    shutil.copyfile(checkpoint, teacher)
    model, datamodule = load_model(config, teacher)
    datamodule.setup("fit")
    inputs, labels = held_out_split(datamodule)
    quality = quality_of(config, datamodule, model, inputs)
    context = StageContext(
        config, compression, model, datamodule, teacher, work_dir, inputs, labels, quality, parent_run_id, experiment_id, tracking_uri
    )
    skipped = skipped_methods(compression, model)
    for method, reason in skipped.items():
        log.warning("%s skipped: %s", method, reason)
    outcome = CompressionOutcome(quality, results=run_stages(context, skipped), skipped=skipped)
    outcome.decision = choose(outcome.results, compression)
    outcome.registered_version = register(outcome.decision, compression, tracking_uri)

    client = MlflowClient(tracking_uri)
    client.log_figure(parent_run_id, pareto_figure(outcome.results, quality), "plots/pareto.png")
    client.log_table(parent_run_id, summary_rows(outcome.results, quality), "summary/variants.json")
    if outcome.decision.champion is not None:
        client.set_tag(parent_run_id, TAG_CHAMPION, outcome.decision.champion.name)
        champion = outcome.decision.champion.metrics
        for key in (quality.metric, quality.change, "size_bytes", "latency_ms_p50"):
            client.log_metric(parent_run_id, f"champion/{key}", champion[key])
    client.set_tag(parent_run_id, TAG_GATE, outcome.decision.reason[:5000])
    if outcome.failed:
        client.set_tag(parent_run_id, TAG_FAILED_VARIANTS, ", ".join(r.name for r in outcome.failed))
    if skipped:
        client.set_tag(parent_run_id, TAG_SKIPPED, "; ".join(f"{method}: {reason}" for method, reason in skipped.items())[:5000])
    print_variants(outcome.results, outcome.decision, outcome.registered_version, compression.registered_model_name, quality, skipped)
    return outcome
