"""The `orchestrate generate` schema (conf/generate.yaml), registered in Hydra's ConfigStore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from orchestrator.config.schema import TrackingConfig
from orchestrator.errors import ConfigError


@dataclass
class GenerateSource:
    """Which trained language model to sample from.

    Attributes:
        run_id: an MLflow run of `orchestrate train` with model=causal_lm (its config.yaml and
            checkpoints/best.ckpt).
    """

    run_id: Optional[str] = None


@dataclass
class GenerateConfig:
    """The `orchestrate generate` config (conf/generate.yaml).

    Attributes:
        source: the run to load the model from.
        prompt: the text the sample continues.
        max_new_tokens: tokens to sample after the prompt.
        temperature: softmax temperature (0: greedy, always the most likely token).
        top_k: sample only among the k most likely tokens (null: all).
        seed: seed of the sampling.
        num_samples: how many independent continuations to print.
        tracking: where the run is tracked (tracking.uri; the other fields are unused here).
    """

    source: GenerateSource = field(default_factory=GenerateSource)
    prompt: str = "\n"
    max_new_tokens: int = 80
    temperature: float = 1.0
    top_k: Optional[int] = None
    seed: int = 0
    num_samples: int = 1
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self):
        if not self.source.run_id:
            raise ConfigError("source.run_id", "is required", "pass source.run_id=<RUN_ID> of a causal_lm training run")
        if self.max_new_tokens <= 0:
            raise ConfigError("max_new_tokens", f"must be > 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError("temperature", f"must be >= 0, got {self.temperature}", "0 picks the most likely token")
        if self.top_k is not None and self.top_k <= 0:
            raise ConfigError("top_k", f"must be > 0 or null, got {self.top_k}")
        if self.num_samples <= 0:
            raise ConfigError("num_samples", f"must be > 0, got {self.num_samples}")


def register_schemas() -> None:
    """Make GenerateConfig the schema of conf/generate.yaml (`- generate_schema`)."""
    ConfigStore.instance().store(name="generate_schema", node=GenerateConfig)
