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

    from orchestrator.launch import trainer_class

    def kinds(trainer) -> set[type]:
        return {type(callback) for callback in trainer._create_default_callbacks()}

    trainer = trainer_class()
    without = kinds(trainer(lambda: None, scaling_config=ScalingConfig(num_workers=1)))
    assert DatasetsCallback not in without and len(without) >= 3  # the other default callbacks stay
    assert DatasetsCallback in kinds(trainer(lambda: None, scaling_config=ScalingConfig(num_workers=1), datasets={"train": [1]}))
