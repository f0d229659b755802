"""The embedded Ray the orchestrator starts (the session's ray_cluster): what it exposes and what its
workers are told. A whole training run is checked in tests/test_cli.py's acceptance test."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.ray


def test_embedded_ray_dashboard_binds_to_loopback_only(ray_cluster):
    url = ray_cluster._private.worker.global_worker.node.address_info["webui_url"]
    assert url.split(":")[0] == "127.0.0.1"


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
