"""`orchestrate submit`: the same command, sent as a Ray job to a cluster, and followed to its end.

    orchestrate submit --address http://head:8265 -- train model=cnn scaling.num_workers=8 scaling.use_gpu=true
    orchestrate submit --address http://head:8265 --no-wait -- train -m optimizer.lr=1e-3,1e-2
    orchestrate submit --env HF_HOME=/data/hf --pip scikit-learn==1.5.2 -- train tracking.uri=http://mlflow:5000

The job runs `python -m orchestrator VERB OVERRIDES` on the cluster, with this directory as its
working_dir (minus .git, virtualenvs, MLflow stores, Ray results, Hydra outputs and credential files).
Inside the job Ray sets RAY_ADDRESS, so `cluster.address=null` means that cluster (orchestrator/runtime/cluster.py).
By default it follows the job's log and exits with the job's outcome (0 only when it SUCCEEDED);
--no-wait prints the job id and returns. --address defaults to $RAY_ADDRESS.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from orchestrator.errors import OrchestratorError
from orchestrator.jobs.submit import NOT_SUBMITTABLE, SubmitOptions, run_submit


def parse_args(argv: list[str]) -> SubmitOptions:
    """Options before `--`, the orchestrate command after it."""
    from orchestrator.cli import VERBS

    parser = argparse.ArgumentParser(
        prog="orchestrate submit",
        description="Run an orchestrate command as a Ray job on a cluster and follow it.",
        usage="orchestrate submit [--address URL] [--no-wait] [--env K=V ...] [--pip PKG ...] -- VERB [OVERRIDES]",
        epilog=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--address", help="the cluster's dashboard / Jobs API, http://HEAD:8265 (default: $RAY_ADDRESS)")
    parser.add_argument("--no-wait", action="store_true", help="print the job id and return instead of following the job")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="an environment variable for the job (repeatable)")
    parser.add_argument("--pip", action="append", default=[], metavar="PKG", help="an extra pip package for the job (repeatable)")
    parser.add_argument("--working-dir", default=".", type=Path, help="the directory shipped to the cluster (default: .)")
    if "--" in argv:
        cut = argv.index("--")
        options, command = argv[:cut], argv[cut + 1 :]
    else:
        options, command = argv, []
    args = parser.parse_args(options)
    if not command:
        parser.error("give the command after --, e.g.: orchestrate submit --address http://HEAD:8265 -- train model=cnn")
    verb, overrides = command[0], command[1:]
    if verb in ("orchestrate", "python"):  # `-- orchestrate train ...` reads naturally too
        parser.error(f"give the verb right after --: `-- {' '.join(command[1:3])} ...`, not `-- {verb} ...`")
    if verb not in VERBS or verb in NOT_SUBMITTABLE:
        choices = ", ".join(v for v in VERBS if v not in NOT_SUBMITTABLE)
        parser.error(f"unknown verb {verb!r} after --; choose one of: {choices}")
    env_vars = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env {item!r}: use KEY=VALUE")
        env_vars[key] = value
    working_dir = args.working_dir.resolve()
    if not working_dir.is_dir():
        parser.error(f"--working-dir {args.working_dir}: not a directory")
    return SubmitOptions(args.address, not args.no_wait, env_vars, args.pip, working_dir, verb, overrides)


def main() -> None:
    from orchestrator.errors import report_and_exit

    logging.basicConfig(level=logging.WARNING)
    options = parse_args(sys.argv[1:])
    try:
        code = run_submit(options)
    except OrchestratorError as err:
        report_and_exit(err)
    sys.exit(code)
