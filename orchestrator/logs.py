"""Console hygiene shared by the driver and the workers: one line per message, no library chatter."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    """Lightning installs its own console handler (and Ray or Hydra one on the root logger), so each of
    its messages would print twice; its INFO lines (accelerator, tips) say nothing a user acts on."""
    import lightning  # noqa: F401  (its import installs the handlers removed here)

    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # MLflow draws a progress bar for every artifact it downloads (a checkpoint of a few KB included).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Known, harmless deprecations raised inside Lightning itself, and its warning that small epochs
    # have fewer batches than log_every_n_steps (metrics are logged per epoch here).
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers which may be a bottleneck.*")
