"""The contract between a sweep's launcher and its trials: what the launcher tells a trial's process,
and which trials train in their own Ray task instead of a worker group (runtime/in_process.py)."""

from __future__ import annotations

from typing import Any

# The sweep run, set in each trial's process (Hydra's hydra.job.env_set): the trial's run is its child.
PARENT_RUN_ENV = "ORCHESTRATOR_PARENT_RUN_ID"
# "1" when the trial trains in its own Ray task (runtime/in_process.py), "0" otherwise; set for every
# trial, as a pooled trial process keeps the environment of the trial before it.
IN_PROCESS_ENV = "ORCHESTRATOR_TRIAL_IN_PROCESS"


def fits_in_process(scaling: dict[str, Any], storage_dir: str) -> bool:
    """A trial that can train in its own Ray task (runtime/in_process.py): 1 CPU worker, no elastic
    range and no retries (those need Ray Train's worker group), checkpoints on a local path."""
    return (
        scaling["num_workers"] == 1
        and not scaling["use_gpu"]
        and not scaling.get("min_workers")
        and scaling["max_failures"] == 0
        and "://" not in storage_dir
    )
