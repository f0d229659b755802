"""`orchestrate generate source.run_id=ID [prompt=...] [OVERRIDES]`: sample text from a trained causal LM.

    orchestrate generate source.run_id=<RUN_ID> prompt="def main(" max_new_tokens=80
    orchestrate generate source.run_id=<RUN_ID> prompt="Once" temperature=0.8 top_k=20 seed=1

The model is rebuilt from the run's config.yaml and checkpoints/best.ckpt (read with weights_only=True);
its tokenizer comes from the run's DataModule (the cached tokenised corpus, so data.path must still exist).
Runs on the driver, without Ray.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import hydra
from omegaconf import DictConfig

from orchestrator.config.conf_dir import CONF_DIR
from orchestrator.config.generate import GenerateConfig, register_schemas
from orchestrator.errors import ConfigError, OrchestratorError

register_schemas()


def run_generate(cfg: DictConfig) -> list[str]:
    """Load the run's causal LM and return `num_samples` texts: the prompt and its continuation."""
    import torch
    from mlflow import MlflowClient

    from orchestrator.config.schema import validate
    from orchestrator.logs import quiet_libraries
    from orchestrator.tracking.source_run import fetch_source_run
    from orchestrator.tracking.store import check_reachable, resolve_uri
    from orchestrator.training.evaluate import load_model

    typed: GenerateConfig = validate(cfg, GenerateConfig)
    uri = resolve_uri(typed.tracking.uri)
    check_reachable(uri, typed.tracking.timeout_s)
    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="orchestrator-") as tmp:
        config, checkpoint = fetch_source_run(MlflowClient(uri), typed.source.run_id, Path(tmp))
        model, datamodule = load_model(config, checkpoint)
    if not hasattr(model, "generate") or not hasattr(datamodule, "tokenizer"):
        raise ConfigError(
            "source.run_id",
            f"run {typed.source.run_id} did not train a language model ({config['model'].get('_target_')})",
            "give a run trained with model=causal_lm data=text_file",
        )
    tokenizer = datamodule.tokenizer
    prompt_ids = tokenizer.encode(typed.prompt)
    if not prompt_ids:
        raise ConfigError("prompt", f"{typed.prompt!r} gives no tokens with this run's tokenizer", "give a longer prompt")
    generator = torch.Generator().manual_seed(typed.seed)
    ids = torch.tensor([prompt_ids] * typed.num_samples, dtype=torch.int64)
    with torch.inference_mode():
        out = model.generate(ids, typed.max_new_tokens, typed.temperature, typed.top_k, generator)
    # The prompt as typed, then the decoded continuation (a word tokenizer's decode would respace it).
    return [typed.prompt + tokenizer.decode(row[len(prompt_ids) :].tolist()) for row in out]


def quote_prompt(argv: list[str]) -> list[str]:
    """`prompt=def main(` as a shell passes it, quoted for Hydra's override grammar (which would refuse
    the bare parenthesis or space). Values the user already quoted are left alone."""
    quoted = []
    for arg in argv:
        if arg.startswith("prompt=") and not arg[len("prompt=") :].startswith(("'", '"')):
            # In Hydra's quoted strings only a quote, and backslashes right before a quote or the end, are escaped.
            value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", arg[len("prompt=") :])
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
