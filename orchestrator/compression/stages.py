"""Run the compression stages: each variant is made, measured and logged inside its own child run of
the pipeline run. A variant that fails marks its run FAILED and the others go on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from orchestrator.compression import prune, quantize
from orchestrator.compression.distill import distill_student, student_name
from orchestrator.compression.gate import VariantResult
from orchestrator.compression.measure import measure
from orchestrator.compression.quality import Quality
from orchestrator.compression.ray_fit import fine_tune
from orchestrator.compression.variant import (
    OnnxVariant,
    TorchVariant,
    Variant,
    count_params,
)
from orchestrator.config.compression import CompressionConfig
from orchestrator.errors import OrchestratorError, RunInterrupted
from orchestrator.tracking.tags import TAG_ERROR, TAG_STAGE, TAG_VARIANT

log = logging.getLogger(__name__)


@dataclass
class StageContext:
    """What every stage works from.

    Attributes:
        config: the resolved training config of the model (data, model, optimizer, trainer, ...).
        compression: `compression.*`.
        model: the trained LitModule (eval mode); `model.net` is the network that is compressed.
        datamodule: its DataModule (set up).
        checkpoint: the trained checkpoint, where Ray workers can read it (the distillation teacher).
        work_dir: a folder workers can read (warm-start weights of the fine-tunes).
        inputs, labels: the held-out test split every variant is measured on.
        quality: how variants are scored on it (accuracy of a classifier, perplexity of a language model).
        parent_run_id, experiment_id, tracking_uri: where the child runs go.
    """

    config: dict[str, Any]
    compression: CompressionConfig
    model: Any
    datamodule: Any
    checkpoint: Path
    work_dir: Path
    inputs: torch.Tensor
    labels: torch.Tensor
    quality: Quality
    parent_run_id: str
    experiment_id: str
    tracking_uri: str

    @property
    def net(self) -> torch.nn.Module:
        return getattr(self.model, "net", self.model)

    @property
    def example_input(self) -> torch.Tensor:
        return self.inputs[:2].clone()


@dataclass
class PlannedVariant:
    """One variant to make: `make(context, run_id)` builds it inside its child run."""

    stage: str
    name: str
    params: dict[str, Any]
    make: Callable[[StageContext, str], Variant]


def _percent(value: float) -> str:
    return f"{round(value * 100):d}"


def _float_variant(name: str, stage: str, module: torch.nn.Module, params: dict) -> TorchVariant:
    total, nonzero = count_params(module)
    return TorchVariant(name=name, stage=stage, num_params=total, nonzero_params=nonzero, params=params, module=module.eval())


def _baseline(ctx: StageContext, run_id: str) -> Variant:
    return _float_variant("baseline", "baseline", ctx.net, {})


def _unstructured(sparsity: float):
    def make(ctx: StageContext, run_id: str) -> Variant:
        settings = ctx.compression.prune
        pruned = prune.prune_unstructured(ctx.model, sparsity)
        if settings.finetune_epochs:
            pruned = fine_tune(
                ctx.config,
                pruned,
                ctx.work_dir,
                run_id,
                ctx.tracking_uri,
                settings.finetune_epochs,
                settings.finetune_lr,
                keep_sparsity=True,
            )
        name = f"prune-unstructured-{_percent(sparsity)}"
        return _float_variant(name, "prune", getattr(pruned, "net", pruned), {"sparsity": sparsity})

    return make


def _structured(ratio: float):
    def make(ctx: StageContext, run_id: str) -> Variant:
        settings = ctx.compression.prune
        pruned = prune.prune_structured(ctx.model, "net", ratio, ctx.example_input, settings.channel_layers)
        if settings.finetune_epochs:
            pruned = fine_tune(
                ctx.config,
                pruned,
                ctx.work_dir,
                run_id,
                ctx.tracking_uri,
                settings.finetune_epochs,
                settings.finetune_lr,
                keep_sparsity=False,
            )
        return _float_variant(f"prune-structured-{_percent(ratio)}", "prune", pruned.net, {"channel_ratio": ratio})

    return make


def _calibration(ctx: StageContext) -> list[torch.Tensor]:
    batches = []
    for x, _ in ctx.datamodule.train_dataloader():
        batches.append(x)
        if len(batches) >= ctx.compression.quantize.num_calibration_batches:
            break
    return batches


def _quantized(method: str):
    def make(ctx: StageContext, run_id: str) -> Variant:
        settings = ctx.compression.quantize
        total, nonzero = count_params(ctx.net)
        common = dict(
            name=f"quantize-{method}-int8",
            stage="quantize",
            num_params=total,
            nonzero_params=nonzero,
            params={"method": method, "engine": settings.engine if method != "onnx" else "onnxruntime"},
        )
        if method == "dynamic":
            return TorchVariant(**common, module=quantize.dynamic_int8(ctx.net, settings.engine), scripted=True)
        if method == "static":
            return TorchVariant(**common, module=quantize.static_int8(ctx.net, settings.engine, _calibration(ctx)), scripted=True)
        return OnnxVariant(**common, model_bytes=quantize.onnx_int8(ctx.net, ctx.example_input, settings.onnx_opset))

    return make


def _distill_params(compression: CompressionConfig) -> dict[str, Any]:
    settings = compression.distill
    return {
        **{f"student.{key}": value for key, value in settings.student.items()},
        "init_from_teacher": settings.init_from_teacher,
        "temperature": settings.temperature,
        "alpha": settings.alpha,
    }


def _distilled(ctx: StageContext, run_id: str) -> Variant:
    settings = ctx.compression.distill
    student = distill_student(ctx.config, settings, ctx.checkpoint, ctx.datamodule, run_id, ctx.tracking_uri)
    return _float_variant(student_name(settings), "distill", getattr(student, "net", student), _distill_params(ctx.compression))


STRUCTURED_PRUNING = "structured pruning"
DISTILLATION = "distillation"


def skip_reasons(model) -> dict[str, str]:
    """Why a method cannot run on `model`, by method (STRUCTURED_PRUNING, DISTILLATION); empty when
    every method applies. Dynamic and static int8, ONNX and unstructured pruning need only an
    `nn.Module`, so they apply to any LightningModule."""
    from trainers.models.causal_lm import NextTokenLitModule
    from trainers.models.classifier import ClassifierLitModule

    reasons = {}
    name = type(model).__name__
    if not isinstance(getattr(model, "net", None), torch.nn.Module):
        reasons[STRUCTURED_PRUNING] = (
            f"{name} has no `net` attribute holding its network, which structured pruning "
            "narrows and the fine-tune rebuilds the module around"
        )
    if not isinstance(model, (ClassifierLitModule, NextTokenLitModule)):
        reasons[DISTILLATION] = (
            f"{name} is not a trainers ClassifierLitModule or NextTokenLitModule, whose `net` and "
            "`training_loss` distillation trains the student through"
        )
    return reasons


def plan(compression: CompressionConfig, skipped: dict[str, str] | None = None) -> list[PlannedVariant]:
    """Every variant the configured stages make, baseline first, without the methods of `skipped`
    (skip_reasons)."""
    skipped = skipped or {}
    planned = [PlannedVariant("baseline", "baseline", {}, _baseline)]
    for stage in compression.stages:
        if stage == "prune":
            planned += [
                PlannedVariant("prune", f"prune-unstructured-{_percent(s)}", {"sparsity": s}, _unstructured(s))
                for s in compression.prune.sparsities
            ]
            if STRUCTURED_PRUNING not in skipped:
                planned += [
                    PlannedVariant("prune", f"prune-structured-{_percent(r)}", {"channel_ratio": r}, _structured(r))
                    for r in compression.prune.channel_ratios
                ]
        elif stage == "quantize":
            planned += [
                PlannedVariant("quantize", f"quantize-{m}-int8", {"method": m}, _quantized(m)) for m in compression.quantize.methods
            ]
        elif stage == "distill" and DISTILLATION not in skipped:
            planned.append(PlannedVariant("distill", student_name(compression.distill), _distill_params(compression), _distilled))
    return planned


def run_variant(ctx: StageContext, planned: PlannedVariant, baseline: float | None) -> VariantResult:
    """Make, measure and log one variant in its own child run (`baseline`: the baseline's
    `quality.metric`, None for the baseline itself); a failure ends that run FAILED."""
    import mlflow

    from orchestrator.tracking.store import flatten, run_tags

    tags = run_tags("compress", ctx.config, {TAG_STAGE: planned.stage, TAG_VARIANT: planned.name})
    run = mlflow.start_run(experiment_id=ctx.experiment_id, run_name=planned.name, parent_run_id=ctx.parent_run_id, tags=tags)
    result = VariantResult(planned.name, planned.stage, run.info.run_id)
    try:
        mlflow.log_params({f"compression.{planned.stage}.{k}": v for k, v in planned.params.items()})
        mlflow.log_params(flatten({k: v for k, v in ctx.config.items() if k in ("data", "model")}))
        variant = planned.make(ctx, run.info.run_id)
        result.metrics = measure(variant, ctx.inputs, ctx.labels, ctx.quality, ctx.compression.measure, baseline)
        mlflow.log_metrics(result.metrics)
        result.model_uri = variant.log_model(ctx.example_input).model_uri
    except (KeyboardInterrupt, RunInterrupted):  # the user stops the whole pipeline, not one variant
        mlflow.end_run("KILLED")
        raise
    except Exception as err:  # one variant's failure must not stop the others: recorded, run FAILED
        log.exception("variant %s failed", planned.name)
        result.status, result.error = "FAILED", f"{err.__class__.__name__}: {err}"[:500]
        mlflow.set_tag(TAG_ERROR, result.error)
        mlflow.end_run("FAILED")
        return result
    mlflow.end_run("FINISHED")
    return result


def skipped_methods(compression: CompressionConfig, model) -> dict[str, str]:
    """The skip_reasons of the methods the configured stages would use."""
    wanted = {
        STRUCTURED_PRUNING: "prune" in compression.stages and bool(compression.prune.channel_ratios),
        DISTILLATION: "distill" in compression.stages,
    }
    return {method: reason for method, reason in skip_reasons(model).items() if wanted[method]}


def run_stages(ctx: StageContext, skipped: dict[str, str] | None = None) -> list[VariantResult]:
    """Every planned variant in order, with a progress display; the baseline's quality is the reference."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from orchestrator.console import console

    planned = plan(ctx.compression, skipped)
    results: list[VariantResult] = []
    baseline = None
    columns = (TextColumn("[bold]compression[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, redirect_stdout=True, redirect_stderr=True) as progress:
        task = progress.add_task("", total=len(planned))
        for item in planned:
            progress.update(task, description=f"{item.stage}: {item.name}")
            result = run_variant(ctx, item, baseline)
            if item.stage == "baseline":
                if not result.metrics:  # every other variant is compared with it
                    raise OrchestratorError(f"the baseline could not be measured, so nothing can be compared: {result.error}")
                baseline = result.metrics[ctx.quality.metric]
            results.append(result)
            progress.advance(task)
        progress.update(task, description="done")
    return results
