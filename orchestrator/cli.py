"""`orchestrate VERB [ARGS]`: one console script, one Hydra app (or small CLI) per verb.

    orchestrate train [OVERRIDES]          one training run; -m for a sweep
    orchestrate --help                     the verbs
    orchestrate VERB --help                a verb's own help (Hydra's, for Hydra verbs)
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    module: str
    summary: str


VERBS: dict[str, Verb] = {
    "train": Verb("orchestrator.train", "one training run on Ray, tracked in MLflow (-m: a sweep)"),
}


def usage() -> str:
    width = max(len(v) for v in VERBS)
    lines = ["usage: orchestrate VERB [OVERRIDES | OPTIONS]", "", "verbs:"]
    lines += [f"  {name:<{width}}  {verb.summary}" for name, verb in VERBS.items()]
    lines += ["", "Each verb takes Hydra overrides (key=value, -m, --cfg job, --help) or its own options.",
              "Example: orchestrate train model=cnn optimizer.lr=0.01 trainer.max_epochs=5"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    verb = VERBS.get(name)
    if verb is None:
        print(f"orchestrate: unknown verb {name!r}; choose one of: {', '.join(VERBS)}\n", file=sys.stderr)
        print(usage(), file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(verb.module)
    sys.argv = [f"orchestrate {name}", *rest]
    module.main()
