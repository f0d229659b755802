"""Typed schemas of `compression.*` and `source.*`, and of the `pipeline` / `compress` verbs' configs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

from orchestrator.config.schema import TrainConfig
from orchestrator.errors import ConfigError

STAGES = ("baseline", "prune", "quantize", "distill")
QUANTIZE_METHODS = ("dynamic", "static", "onnx")
TORCH_ENGINES = ("x86", "fbgemm", "qnnpack", "onednn")


def _fraction(key: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(key, f"must be in (0, 1), got {value}", f"e.g. {key}=0.5")


@dataclass
class PruneConfig:
    """The prune stage.

    Attributes:
        sparsities: unstructured global magnitude pruning, one variant per share of weights zeroed
            (each in (0, 1)); made permanent with `prune.remove`, so the saved model has no masks.
        channel_ratios: structured pruning with Torch-Pruning, one variant per share of neurons/channels
            removed from every prunable layer (each in (0, 1)); the model becomes physically smaller.
        channel_layers: which layers structured pruning narrows: fnmatch patterns of their names in the
            network (`blocks.*.mlp.0`: a transformer's FFN up-projections, whose removed outputs take the
            down-projections' inputs with them); empty: every Linear/Conv layer but the output layer.
        finetune_epochs: epochs of the fine-tune on Ray after pruning (0: no fine-tune).
        finetune_lr: learning rate of the fine-tune (null: the training run's optimizer.lr).
    """

    sparsities: List[float] = field(default_factory=lambda: [0.5, 0.8])
    channel_ratios: List[float] = field(default_factory=lambda: [0.5])
    channel_layers: List[str] = field(default_factory=list)
    finetune_epochs: int = 3
    finetune_lr: Optional[float] = None

    def __post_init__(self):
        for i, value in enumerate(self.sparsities):
            _fraction(f"compression.prune.sparsities[{i}]", value)
        for i, value in enumerate(self.channel_ratios):
            _fraction(f"compression.prune.channel_ratios[{i}]", value)
        if self.finetune_epochs < 0:
            raise ConfigError("compression.prune.finetune_epochs", f"must be >= 0, got {self.finetune_epochs}")
        if self.finetune_lr is not None and self.finetune_lr <= 0:
            raise ConfigError("compression.prune.finetune_lr", f"must be > 0, got {self.finetune_lr}")


@dataclass
class QuantizeConfig:
    """The quantize stage (post-training, int8).

    Attributes:
        methods: which int8 variants to make: `dynamic` (torch.ao dynamic int8, per-channel weights),
            `static` (torch.ao FX static int8, activations calibrated on training batches, per-channel
            weights), `onnx` (ONNX export quantized with ONNX Runtime's quantize_dynamic, per-channel:
            the deployable artifact, and the fastest here at batch 1).
        engine: torch.backends.quantized.engine for the torch variants (x86 on this CPU; qnnpack on ARM).
        num_calibration_batches: training batches the static variant observes to calibrate activations.
        onnx_opset: ONNX opset of the export.
    """

    methods: List[str] = field(default_factory=lambda: ["dynamic", "static", "onnx"])
    engine: str = "x86"
    num_calibration_batches: int = 8
    onnx_opset: int = 17

    def __post_init__(self):
        for i, method in enumerate(self.methods):
            if method not in QUANTIZE_METHODS:
                raise ConfigError(
                    f"compression.quantize.methods[{i}]", f"unknown backend {method!r}", f"choose from {list(QUANTIZE_METHODS)}"
                )
        if self.engine not in TORCH_ENGINES:
            raise ConfigError("compression.quantize.engine", f"unknown engine {self.engine!r}", f"choose from {list(TORCH_ENGINES)}")
        if self.num_calibration_batches <= 0:
            raise ConfigError("compression.quantize.num_calibration_batches", f"must be > 0, got {self.num_calibration_batches}")


@dataclass
class DistillConfig:
    """The distill stage: a smaller student trained on Ray against the teacher's soft targets.

    Attributes:
        student: what makes the student smaller: `model.*` settings merged over the teacher's model
            config (`{hidden_dim: 128}` for the MLP, `{num_layers: 1}` for a transformer or the GPT); the student
            must have fewer parameters than the teacher. Per-model defaults: conf/compression_model/.
        init_from_teacher: start the student from the teacher's trained weights wherever a parameter has
            the same name and shape (a shallower student keeps the teacher's embeddings and first
            layers; a narrower one shares little or nothing); false: the model's own initialisation.
        temperature: softmax temperature of the KD loss (a language model's: over the vocabulary, at
            every position of a block).
        alpha: weight of the KD loss; (1 - alpha) weighs cross-entropy on the labels (the next tokens).
        epochs: training epochs of the student.
    """

    student: Dict[str, Any] = field(default_factory=dict)
    init_from_teacher: bool = True
    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int = 15

    def __post_init__(self):
        if self.temperature <= 0:
            raise ConfigError("compression.distill.temperature", f"must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError("compression.distill.alpha", f"must be in [0, 1], got {self.alpha}")
        if self.epochs <= 0:
            raise ConfigError("compression.distill.epochs", f"must be > 0, got {self.epochs}")


@dataclass
class MeasureConfig:
    """How every variant is measured (the same process, the same threads, for all of them).

    Attributes:
        num_threads: torch and ONNX Runtime intra-op threads while measuring.
        num_warmup: untimed calls before timing.
        num_repeats: timed calls at batch 1 (latency percentiles).
        num_throughput_repeats: timed calls at batch `throughput_batch_size`.
        throughput_batch_size: batch size of the throughput measurement.
    """

    num_threads: int = 1
    num_warmup: int = 50
    num_repeats: int = 500
    num_throughput_repeats: int = 100
    throughput_batch_size: int = 64

    def __post_init__(self):
        for name in ("num_threads", "num_warmup", "num_repeats", "num_throughput_repeats", "throughput_batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"compression.measure.{name}", f"must be > 0, got {getattr(self, name)}")


@dataclass
class CompressionConfig:
    """The compression stages, the gate and the registry.

    Attributes:
        stages: stages to run, in order (drop one to skip it); baseline always runs, as the reference.
        prune: the prune stage. quantize: the quantize stage. distill: the distill stage.
        measure: how variants are timed.
        max_acc_drop: gate of classifiers: baseline test/acc minus the variant's (`acc_drop`) at most this.
        max_ppl_increase: gate of language models: the variant's test/ppl over the baseline's, minus 1
            (`ppl_increase`, relative: 0.05 lets a variant be 5% more perplexed) at most this.
        max_size_bytes: gate: the variant's artifact at most this many bytes (null: no limit).
        max_latency_ms: gate: batch-1 p50 latency at most this (null: no limit).
        registered_model_name: MLflow Model Registry name of the champion.
        champion_alias: the alias the chosen variant gets.
    """

    stages: List[str] = field(default_factory=lambda: list(STAGES))
    prune: PruneConfig = field(default_factory=PruneConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    max_acc_drop: float = 0.01
    max_ppl_increase: float = 0.05
    max_size_bytes: Optional[int] = None
    max_latency_ms: Optional[float] = None
    registered_model_name: str = "orchestrator-model"
    champion_alias: str = "champion"

    def __post_init__(self):
        for i, stage in enumerate(self.stages):
            if stage not in STAGES:
                raise ConfigError(f"compression.stages[{i}]", f"unknown stage {stage!r}", f"choose from {list(STAGES)}")
        if self.max_acc_drop < 0:
            raise ConfigError("compression.max_acc_drop", f"must be >= 0, got {self.max_acc_drop}")
        if not (math.isfinite(self.max_ppl_increase) and self.max_ppl_increase >= 0):
            raise ConfigError(
                "compression.max_ppl_increase",
                f"must be a finite number >= 0, got {self.max_ppl_increase}",
                "e.g. compression.max_ppl_increase=0.05 (5% above the baseline's perplexity)",
            )
        if self.max_size_bytes is not None and self.max_size_bytes <= 0:
            raise ConfigError("compression.max_size_bytes", f"must be > 0, got {self.max_size_bytes}")
        if self.max_latency_ms is not None and self.max_latency_ms <= 0:
            raise ConfigError("compression.max_latency_ms", f"must be > 0, got {self.max_latency_ms}")
        if not self.registered_model_name:
            raise ConfigError("compression.registered_model_name", "must not be empty")


@dataclass
class SourceConfig:
    """What `orchestrate compress` compresses: exactly one of the two.

    Attributes:
        run_id: an MLflow run of the training path (its config.yaml and checkpoints/best.ckpt).
        checkpoint: a Lightning checkpoint file; the model is built from this command's model/data config.
    """

    run_id: Optional[str] = None
    checkpoint: Optional[str] = None


@dataclass
class PipelineConfig(TrainConfig):
    """The `orchestrate pipeline` config (conf/pipeline.yaml): train's config plus `compression`."""

    compression: CompressionConfig = field(default_factory=CompressionConfig)


@dataclass
class CompressConfig(TrainConfig):
    """The `orchestrate compress` config (conf/compress.yaml): `source` plus `compression`."""

    compression: CompressionConfig = field(default_factory=CompressionConfig)
    source: SourceConfig = field(default_factory=SourceConfig)

    def __post_init__(self):
        super().__post_init__()
        if bool(self.source.run_id) == bool(self.source.checkpoint):
            raise ConfigError(
                "source", "give exactly one of source.run_id and source.checkpoint", "e.g. orchestrate compress source.run_id=<RUN_ID>"
            )


def register_schemas() -> None:
    """Make `pipeline_schema` and `compress_schema` available to conf/pipeline.yaml and conf/compress.yaml."""
    cs = ConfigStore.instance()
    cs.store(name="pipeline_schema", node=PipelineConfig)
    cs.store(name="compress_schema", node=CompressConfig)
