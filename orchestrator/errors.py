"""The orchestrator's exceptions: each message names the config key (or flag) and the fix.

They are plain, picklable exceptions so that they cross Ray process boundaries intact.
"""


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
