"""`orchestrate VERB [ARGS]`: one console script, one Hydra app (or small CLI) per verb.

orchestrate train [OVERRIDES]          one training run; -m for a sweep
orchestrate --help                     the verbs
orchestrate VERB --help                a verb's own help (Hydra's, for Hydra verbs)
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    module: str
    summary: str


# Hydra verbs whose overrides are pre-checked (generate quotes its free-text prompt= itself first).
HYDRA_VERBS = ("train", "pipeline", "compress")


def check_overrides(args: list[str]) -> None:
    """Parse every override with Hydra's own grammar first, so a malformed one is named in the error
    (Hydra alone says only "no viable alternative at input ...")."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            parser.parse_overrides([arg])
        except OverrideParseException as err:
            # Hydra's lines (where parsing stopped, and why, e.g. "empty choice is not legal"), not its link
            why = "; ".join(line for line in err.message.splitlines() if line and not line.startswith("See "))
            print(
                f"error: malformed override {arg!r}: {why} (grammar: https://hydra.cc/docs/advanced/override_grammar/basic/)",
                file=sys.stderr,
            )
            sys.exit(2)


VERBS: dict[str, Verb] = {
    "pipeline": Verb("orchestrator.commands.pipeline", "train -> compress -> evaluate -> gate -> register (the main job)"),
    "compress": Verb("orchestrator.commands.compress", "compress a trained model: source.run_id=ID or source.checkpoint=PATH"),
    "train": Verb("orchestrator.commands.train", "one training run on Ray, tracked in MLflow (-m: a sweep)"),
    "compare": Verb("orchestrator.commands.compare", "runs of an experiment or a sweep side by side; plot; MLflow compare URL"),
    "resume": Verb("orchestrator.commands.resume", "continue an interrupted run from its last checkpoint, in the same MLflow run"),
    "submit": Verb("orchestrator.commands.submit", "send a command as a Ray job to a cluster: submit --address URL -- VERB [OVERRIDES]"),
    "generate": Verb("orchestrator.commands.generate", "sample text from a trained causal LM: generate source.run_id=ID prompt=..."),
    "jobs": Verb("orchestrator.commands.jobs", "the Ray jobs of a cluster: jobs list|status|logs|stop [JOB_ID] --address URL"),
}


def usage() -> str:
    width = max(len(v) for v in VERBS)
    lines = ["usage: orchestrate VERB [OVERRIDES | OPTIONS]", "", "verbs:"]
    lines += [f"  {name:<{width}}  {verb.summary}" for name, verb in VERBS.items()]
    lines += [
        "",
        "Each verb takes Hydra overrides (key=value, -m, --cfg job, --help) or its own options.",
        "Example: orchestrate train model=cnn optimizer.lr=0.01 trainer.max_epochs=5",
    ]
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
    from orchestrator.jobs.driver import prepare_job_driver

    prepare_job_driver()  # in a Ray job: a private copy of its working_dir; SIGTERM ends the run KILLED
    # As with `python -m`, the user's own modules in the working directory are importable
    # (model._target_=mypkg.MyLitModule); launch.user_code_runtime_env ships them to the workers.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if name in HYDRA_VERBS:
        check_overrides(rest)
    module = importlib.import_module(verb.module)
    sys.argv = [f"orchestrate {name}", *rest]
    module.main()
