"""Inside a Ray job: how the driver starts (a private working directory) and stops (SIGTERM).

`orchestrate jobs stop` asks Ray to stop the job, and Ray sends the driver SIGTERM (then SIGKILL after
RAY_JOB_STOP_WAIT_TIME_S). Python's default for SIGTERM ends the process on the spot, leaving the MLflow
run RUNNING; here SIGTERM raises KeyboardInterrupt, the path of Ctrl-C, so the run ends KILLED (during a
fit, orchestrator/runtime/launch.py forwards it to Ray Train's own handler first).

The working directory:

Ray unpacks a job's working_dir under `<session>/runtime_resources/working_dir_files/` and starts the
entrypoint there. When a second node runs on the same machine with the same temp dir (two plain
`ray start` commands on one host, as in a local multi-node test), that node unpacks the same package
into the same folder with overwrite when the job's first worker lands on it: the folder the driver runs
in is deleted and re-created, `os.getcwd()` fails in the driver, and anything the driver wrote under it
(Ray Train's `ray_results/`) is gone. A copy of the few files the job shipped avoids all of it; on
clusters of separate machines it changes nothing but the folder's name.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile

log = logging.getLogger(__name__)

JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray for a job's driver only
UNPACKED_MARK = f"{os.sep}runtime_resources{os.sep}working_dir_files{os.sep}"


def leave_unpacked_working_dir() -> str | None:
    """In a job's driver running in Ray's unpacked working_dir, move to a private copy. The copy stays
    after the job, as Ray's own folder does: it holds the run's Ray Train storage (`ray_results/`).

    Returns the new working directory, or None when this process is not such a driver."""
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        return None
    if JOB_CONFIG_ENV not in os.environ or UNPACKED_MARK not in cwd + os.sep:
        return None
    private = tempfile.mkdtemp(prefix="orchestrator-job-")
    shutil.copytree(cwd, private, symlinks=True, dirs_exist_ok=True)
    os.chdir(private)
    log.info("running the job from a private copy of its working_dir: %s", private)
    return private


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}: the Ray job is being stopped")


def prepare_job_driver() -> bool:
    """In a Ray job's driver: a private working directory, and SIGTERM ending the run like Ctrl-C.
    Returns whether this process is a job's driver."""
    if JOB_CONFIG_ENV not in os.environ:
        return False
    leave_unpacked_working_dir()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    return True
