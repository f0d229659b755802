"""RunLogger: Lightning's MLFlowLogger writing into the run the driver created, and nothing else.

The driver owns the run's lifecycle and params, so this adapter neither logs hyperparameters (the
resolved config is already there, flattened) nor ends the run when a worker's fit ends (a restarted
worker group keeps writing into the same run).
"""

from __future__ import annotations

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only


class RunLogger(MLFlowLogger):
    """Logs metrics from rank zero into an existing MLflow run.

    Args:
        tracking_uri: the driver's tracking URI (absolute).
        run_id: the run the driver created.
    """

    def __init__(self, tracking_uri: str, run_id: str):
        super().__init__(tracking_uri=tracking_uri, run_id=run_id, log_model=False)

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        return

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        return
