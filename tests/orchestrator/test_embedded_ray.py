"""The embedded Ray the orchestrator starts (the session's ray_cluster): what it exposes and what its
workers are told. A whole training run is checked in tests/test_cli.py's acceptance test."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.ray


def test_embedded_ray_dashboard_binds_to_loopback_only(ray_cluster):
    url = ray_cluster._private.worker.global_worker.node.address_info["webui_url"]
    assert url.split(":")[0] == "127.0.0.1"


def test_embedded_ray_takes_no_fixed_port(ray_cluster):
    """Ray's fixed defaults (dashboard 8265, dashboard agent 52365) are left to a Ray started beside this
    one (`ray start --head`, another `orchestrate train`); the agent is up on the port it was given
    (Ray records -1 for an agent that found its port taken)."""
    from ray._private.ray_constants import (
        DEFAULT_DASHBOARD_AGENT_LISTEN_PORT,
        DEFAULT_DASHBOARD_PORT,
    )

    node = ray_cluster._private.worker.global_worker.node
    dashboard_port = int(node.address_info["webui_url"].rsplit(":", 1)[1])
    assert dashboard_port != DEFAULT_DASHBOARD_PORT
    assert node.dashboard_agent_listen_port not in (-1, DEFAULT_DASHBOARD_AGENT_LISTEN_PORT), node.dashboard_agent_listen_port


def test_workers_state_api_calls_reach_this_clusters_dashboard(ray_cluster):
    """Ray Train's PlacementGroupCleaner asks the state API from inside a worker; with several Ray
    instances on a machine it must be told which one (else a 12 s stop timeout ends every run)."""
    url = ray_cluster._private.worker.global_worker.node.address_info["webui_url"]

    @ray_cluster.remote(num_cpus=0)
    def in_a_worker() -> tuple[str | None, bool]:
        from ray.util.state import list_nodes

        return os.environ.get("RAY_API_SERVER_ADDRESS"), len(list_nodes(timeout=10)) >= 1

    address, answered = ray_cluster.get(in_a_worker.remote(), timeout=120)
    assert address == f"http://{url}" and answered


def test_workers_are_told_not_to_start_a_preemption_watcher(ray_cluster):
    """An embedded Ray has no node an autoscaler could drain: Ray Train's PreemptionWatcher (an actor
    process per run) is off in every process of it, so each run's controller reads it off."""

    @ray_cluster.remote(num_cpus=0)
    def in_a_worker() -> str | None:
        return os.environ.get("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER")

    assert ray_cluster.get(in_a_worker.remote(), timeout=120) == "0"


def test_runs_start_no_ray_data_actor():
    """Ray Train's DatasetManager serves Ray Datasets, which no run passes: the trainer leaves it out
    (one actor process fewer per run), and keeps it for a run that does pass datasets."""
    from ray.train import ScalingConfig
    from ray.train.v2._internal.callbacks import DatasetsCallback

    from orchestrator.runtime.launch import trainer_class

    def kinds(trainer) -> set[type]:
        return {type(callback) for callback in trainer._create_default_callbacks()}

    trainer = trainer_class()
    without = kinds(trainer(lambda: None, scaling_config=ScalingConfig(num_workers=1)))
    assert DatasetsCallback not in without and len(without) >= 3  # the other default callbacks stay
    assert DatasetsCallback in kinds(trainer(lambda: None, scaling_config=ScalingConfig(num_workers=1), datasets={"train": [1]}))


USER_CODE_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])  # as the CLI puts the working directory on sys.path
import ray
from orchestrator.runtime.cluster import connect
from orchestrator.runtime.launch import user_code_runtime_env
from orchestrator.config.schema import ClusterConfig

connect(ClusterConfig(num_cpus=1, include_dashboard=False), user_code_runtime_env({"model": {"_target_": "usermod.Model"}}))

@ray.remote(num_cpus=1)
def in_a_worker():
    import usermod
    return usermod.VALUE, ray.get_runtime_context().runtime_env

print(json.dumps({"driver_imported": "usermod" in sys.modules, "worker": ray.get(in_a_worker.remote(), timeout=120)}))
"""


def test_user_code_reaches_an_embedded_rays_workers_without_a_runtime_env(tmp_path):
    """The user's modules (found on the driver's sys.path, not imported there) reach an embedded Ray's
    workers through the environment they inherit, not a runtime_env: a job without one runs its tasks in
    the worker processes Ray starts with the cluster, where a sweep's trials find Lightning imported."""
    import json
    import subprocess
    import sys

    code = tmp_path / "code"
    code.mkdir()
    (code / "usermod.py").write_text("VALUE = 42\n")
    out = subprocess.run(
        [sys.executable, "-c", USER_CODE_DRIVER, str(code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"driver_imported": False, "worker": [42, {}]}
