"""Running the CLI and reading what a run left in MLflow (shared by the Ray-tier tests)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient

ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))
# Enough samples that an epoch takes a few seconds on 2 CPUs, so a signal lands mid-epoch.
SLOW_RUN = [
    "data=synthetic",
    "data.num_samples=60000",
    "data.batch_size=256",
    "model=mlp",
    "model.hidden_dim=256",
    "callbacks=none",
    "tracking.log_model=false",
]


def only_run(client: MlflowClient):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def wait_for_epochs(client: MlflowClient, count: int, process: subprocess.Popen, timeout_s: float = 400) -> str:
    """Block until the (only) run has `count` val/acc points; returns its id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        try:
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        except Exception:  # the store is created by the run itself
            runs = []
        if runs and len(client.get_metric_history(runs[0].info.run_id, "val/acc")) >= count:
            return runs[0].info.run_id
        time.sleep(0.5)
    raise AssertionError(f"no {count} epochs within {timeout_s} s")


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


# Runs a command as a child subreaper (Linux prctl PR_SET_CHILD_SUBREAPER), so every process the command
# leaves behind, orphaned, becomes this wrapper's child instead of init's. A few seconds after the
# command exits (reaping what ends meanwhile), it writes what is still alive (pid and command line) as JSON
# to argv[1], kills it, and exits with the command's exit code.
REAPER = r"""
import ctypes, json, os, signal, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
report, grace_s, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
code = subprocess.run(command).returncode
deadline = time.monotonic() + grace_s
while time.monotonic() < deadline:  # reap what exits meanwhile: orphans that end become our zombies
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    time.sleep(0.1)
def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                state, ppid = stat.rsplit(")", 1)[1].split()[:2]
                if int(ppid) == pid and state != "Z":
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found
left, queue = [], children_of(os.getpid())
while queue:
    pid = queue.pop()
    try:
        cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
    except OSError:
        continue
    left.append({"pid": pid, "cmd": cmd})
    queue += children_of(pid)
json.dump(left, open(report, "w"))
for item in left:
    try:
        os.kill(item["pid"], signal.SIGKILL)
    except OSError:
        pass
sys.exit(code)
"""


def run_reaped(command: list[str], cwd: Path, env: dict, timeout: float, grace_s: float = 5.0):
    """subprocess.run(command) that also returns the processes the command left alive `grace_s` after it
    exited (its whole tree, orphans included): a list of {"pid", "cmd"}, empty when it left nothing."""
    import json

    report = cwd / "left_behind.json"
    out = subprocess.run(
        [sys.executable, "-c", REAPER, str(report), str(grace_s), *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out, json.loads(report.read_text())
