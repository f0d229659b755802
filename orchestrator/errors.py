"""The orchestrator's exceptions: each message names the config key (or flag) and the fix.

They are plain, picklable exceptions so that they cross Ray process boundaries intact.
"""

from __future__ import annotations

import sys
from typing import NoReturn


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose; the CLI prints it without a traceback."""


class ConfigError(OrchestratorError):
    """A config value is wrong. Raised before any work starts."""

    def __init__(self, key: str, problem: str, fix: str = ""):
        self.key = key
        self.problem = problem
        self.fix = fix
        message = f"{key}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.key, self.problem, self.fix))


class ClusterError(OrchestratorError):
    """The Ray cluster cannot be reached, or cannot give what the run asks for."""


class TrackingError(OrchestratorError):
    """The MLflow tracking store cannot be reached or refuses the request."""


class TrainingError(OrchestratorError):
    """Training itself failed (a worker raised, or retries ran out)."""


class RunInterrupted(OrchestratorError):
    """The user stopped the run (Ctrl-C or SIGTERM): workers stopped, checkpoints kept, run KILLED."""


# The exit codes of every verb (and of both Hydra plugins), the one place they are decided.
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: the run is KILLED, its checkpoints kept
EXIT_FAILED = 1  # the work started and failed (training, a job, a failed trial)
EXIT_BAD_INPUT = 2  # refused before work started: a config value, the cluster, the tracking store


def exit_code(err: BaseException) -> int:
    """The exit code for `err`: EXIT_INTERRUPTED, EXIT_FAILED or EXIT_BAD_INPUT."""
    if isinstance(err, (RunInterrupted, KeyboardInterrupt)):
        return EXIT_INTERRUPTED
    if isinstance(err, TrainingError):
        return EXIT_FAILED
    return EXIT_BAD_INPUT


def report_and_exit(err: BaseException) -> NoReturn:
    """Print `err` as the CLI shows errors (one line, no traceback) and exit with its exit_code."""
    from orchestrator.console import print_error

    print_error(str(err))
    sys.exit(exit_code(err))
