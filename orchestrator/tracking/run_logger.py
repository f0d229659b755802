"""RunLogger: Lightning's MLFlowLogger writing into the run the driver created, and nothing else.

The driver owns the run's lifecycle and params, so this adapter neither logs hyperparameters (the
resolved config is already there, flattened) nor ends the run when a worker's fit ends (a restarted
worker group keeps writing into the same run).

Tracking outages do not stop training: a metric batch the store refuses is kept in memory and
written, in order, with the next batch that goes through (and at the end of fit). Requests to an HTTP
tracking server fail fast (MLflow's own retries would stall the training step for minutes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

# Applied in the worker process before the first request; a user's own setting wins.
HTTP_ENV_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class RunLogger(MLFlowLogger):
    """Logs metrics from rank zero into an existing MLflow run, buffering through tracking outages.

    Args:
        tracking_uri: the driver's tracking URI (absolute).
        run_id: the run the driver created.
    """

    def __init__(self, tracking_uri: str, run_id: str):
        for name, value in HTTP_ENV_DEFAULTS.items():
            os.environ.setdefault(name, value)
        super().__init__(tracking_uri=tracking_uri, run_id=run_id, log_model=False)
        self.pending: list[tuple[dict[str, float], int | None]] = []

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        return

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.pending.append((dict(metrics), step))
        self.flush()

    @rank_zero_only
    def flush(self) -> None:
        """Write every pending batch, oldest first; keep the rest if the store is unreachable."""
        while self.pending:
            metrics, step = self.pending[0]
            try:
                super().log_metrics(metrics, step)
            except Exception as err:  # connection refused, 5xx, locked SQLite: retried with the next batch
                if len(self.pending) == 1:
                    log.warning("tracking store unreachable (%s); buffering metrics until it answers", err)
                return
            self.pending.pop(0)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        self.flush()
        if self.pending:
            log.warning("%d metric batches could not be written to the tracking store", len(self.pending))
