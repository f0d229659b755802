"""`orchestrate generate source.run_id=ID [prompt=...] [OVERRIDES]`: sample text from a trained causal LM.

    orchestrate generate source.run_id=<RUN_ID> prompt="def main(" max_new_tokens=80
    orchestrate generate source.run_id=<RUN_ID> prompt="Once" temperature=0.8 top_k=20 seed=1

The model is rebuilt from the run's config.yaml and checkpoints/best.ckpt (read with weights_only=True);
its tokenizer comes from the run's DataModule (the cached tokenised corpus, so data.path must still exist).
Runs on the driver, without Ray.
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from orchestrator.conf_dir import CONF_DIR
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.schema import TrackingConfig

log = logging.getLogger(__name__)


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


ConfigStore.instance().store(name="generate_schema", node=GenerateConfig)


def run_generate(cfg: DictConfig) -> list[str]:
    """Load the run's causal LM and return `num_samples` texts: the prompt and its continuation."""
    import torch
    from mlflow import MlflowClient

    from orchestrator.compress import fetch_source_run
    from orchestrator.evaluate import load_model
    from orchestrator.logs import quiet_libraries
    from orchestrator.schema import validate
    from orchestrator.tracking import check_reachable, resolve_uri

    typed: GenerateConfig = validate(cfg, GenerateConfig)
    uri = resolve_uri(typed.tracking.uri)
    check_reachable(uri, typed.tracking.timeout_s)
    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="orchestrator-") as tmp:
        config, checkpoint = fetch_source_run(MlflowClient(uri), typed.source.run_id, Path(tmp))
        model, datamodule = load_model(config, checkpoint)
    if not hasattr(model, "generate") or not hasattr(datamodule, "tokenizer"):
        raise ConfigError("source.run_id", f"run {typed.source.run_id} did not train a language model "
                          f"({config['model'].get('_target_')})", "give a run trained with model=causal_lm data=text_file")
    tokenizer = datamodule.tokenizer
    prompt_ids = tokenizer.encode(typed.prompt)
    if not prompt_ids:
        raise ConfigError("prompt", f"{typed.prompt!r} gives no tokens with this run's tokenizer", "give a longer prompt")
    generator = torch.Generator().manual_seed(typed.seed)
    ids = torch.tensor([prompt_ids] * typed.num_samples, dtype=torch.int64)
    with torch.inference_mode():
        out = model.generate(ids, typed.max_new_tokens, typed.temperature, typed.top_k, generator)
    # The prompt as typed, then the decoded continuation (a word tokenizer's decode would respace it).
    return [typed.prompt + tokenizer.decode(row[len(prompt_ids):].tolist()) for row in out]


def quote_prompt(argv: list[str]) -> list[str]:
    """`prompt=def main(` as a shell passes it, quoted for Hydra's override grammar (which would refuse
    the bare parenthesis or space). Values the user already quoted are left alone."""
    quoted = []
    for arg in argv:
        if arg.startswith("prompt=") and not arg[len("prompt="):].startswith(("'", '"')):
            # In Hydra's quoted strings only a quote, and backslashes right before a quote or the end, are escaped.
            value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", arg[len("prompt="):])
            value = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, value)
            arg = f"prompt='{value}'"
        quoted.append(arg)
    return quoted


def main() -> None:
    sys.argv = [sys.argv[0], *quote_prompt(sys.argv[1:])]
    _hydra_main()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="generate")
def _hydra_main(cfg: DictConfig) -> None:
    from orchestrator.console import console, print_error

    try:
        samples = run_generate(cfg)
    except OrchestratorError as err:
        print_error(str(err))
        raise SystemExit(2) from err
    for i, text in enumerate(samples):
        if len(samples) > 1:
            console.rule(f"sample {i + 1}")
        console.out(text, highlight=False)
