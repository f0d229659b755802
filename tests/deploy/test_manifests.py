"""The manifests for real clusters parse and agree with the CLI: the entrypoint `orchestrate submit` sends,
config names that compose, Ray's and MLflow's ports. (Docker, Kubernetes and AWS cannot run here: these
tests read the files; they do not build or deploy them.)"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.jobs.client import DEFAULT_DASHBOARD_PORT
from orchestrator.jobs.submit import entrypoint

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GCS_PORT = 6379
MLFLOW_PORT = 5000


def compose_train(overrides: list[str]):
    """`orchestrate train OVERRIDES` as Hydra composes it, validated by the schema."""
    from hydra import compose, initialize_config_dir

    from orchestrator.config.conf_dir import CONF_DIR
    from orchestrator.config.schema import register_schemas, validate

    register_schemas()
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        config = compose("train", overrides=[*overrides, "paths.output_dir=/tmp/unused"])
    validate(config)
    return config


def load(relative: str) -> dict:
    return yaml.safe_load((DEPLOY / relative).read_text())


def containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def env_of(container: dict) -> dict[str, dict | str]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def check_cluster_spec(spec: dict) -> None:
    assert spec["rayVersion"].startswith("2.60.")
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    [head_container] = containers(head["template"])
    ports = {port["name"]: port["containerPort"] for port in head_container["ports"]}
    assert ports["dashboard"] == DEFAULT_DASHBOARD_PORT and ports["gcs-server"] == GCS_PORT
    groups = {group["groupName"]: group for group in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for group in groups.values():
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        [container] = containers(group["template"])
        env = env_of(container)
        # token auth (Ray 2.60) from a Secret, and the MLflow service of deploy/mlflow on its port
        assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"]["secretKeyRef"]["name"] == "ray-auth"
        assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{MLFLOW_PORT}"
        # deploy/mlflow requires a user: the credentials come from a Secret, never from the manifest
        secrets = {env[f"MLFLOW_TRACKING_{key.upper()}"]["secretKeyRef"]["key"] for key in ("username", "password")}
        assert secrets == {"username", "password"}
        assert env["MLFLOW_TRACKING_PASSWORD"]["secretKeyRef"]["name"] == "mlflow-auth"
    gpu = containers(groups["gpu"]["template"])[0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1" and gpu["image"].endswith(":gpu")
    assert "nvidia.com/gpu" not in containers(groups["cpu"]["template"])[0]["resources"]["limits"]


def test_kuberay_raycluster():
    manifest = load("kuberay/raycluster.yaml")
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    check_cluster_spec(manifest["spec"])


def test_kuberay_rayjob_runs_the_submit_entrypoint_with_valid_overrides():
    manifest = load("kuberay/rayjob.yaml")
    assert manifest["kind"] == "RayJob"
    spec = manifest["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["activeDeadlineSeconds"] > 0
    check_cluster_spec(spec["rayClusterSpec"])
    words = shlex.split(spec["entrypoint"])
    verb, overrides = words[3], words[4:]
    assert spec["entrypoint"].split() == entrypoint(verb, overrides).split()  # what `orchestrate submit` sends
    config = compose_train(overrides)  # every key exists in conf/ and passes the schema
    assert config.scaling.use_gpu is True and config.tracking.uri == f"http://mlflow:{MLFLOW_PORT}"


def test_cluster_launcher_config():
    config = load("cluster-launcher/aws.yaml")
    assert config["provider"]["type"] == "aws"
    nodes = config["available_node_types"]
    assert config["head_node_type"] in nodes and {"cpu_worker", "gpu_worker"} <= set(nodes)
    for name in ("cpu_worker", "gpu_worker"):
        assert 0 <= nodes[name]["min_workers"] <= nodes[name]["max_workers"] <= config["max_workers"]
    head = " ".join(config["head_start_ray_commands"])
    assert f"--port={GCS_PORT}" in head and f"--dashboard-port={DEFAULT_DASHBOARD_PORT}" in head
    assert f":{GCS_PORT}" in " ".join(config["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in " ".join(config["docker"]["run_options"])


def test_dockerfile_installs_pinned_torch_first_in_cpu_and_cuda_variants():
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    pyproject = (DEPLOY.parent / "pyproject.toml").read_text()
    ray_pin = re.search(r'"ray\[[^\]]+\]>=([\d.]+)', pyproject).group(1)
    assert re.search(rf"ARG RAY_VERSION={re.escape(ray_pin)}", text) or f"RAY_VERSION={ray_pin}.0" in text
    assert "ARG VARIANT=cpu" in text and "FROM rayproject/ray:${RAY_VERSION}-py311-${VARIANT}" in text
    makefile_torch = re.search(r"TORCH_SPEC \?= (\S+)", (DEPLOY.parent / "Makefile").read_text()).group(1)
    assert f"ARG TORCH_SPEC={makefile_torch}" in text
    assert "whl/cpu" in text and "whl/cu" in text
    torch_at = text.index('"$TORCH_SPEC"')
    project_at = text.index("pip install --no-cache-dir .")
    assert torch_at < project_at  # torch first, as the Makefile does
    for folder in ("orchestrator", "trainers", "conf"):
        assert f"COPY --chown=ray:users {folder} ./{folder}" in text
    assert re.search(rf"EXPOSE .*{GCS_PORT}.*{DEFAULT_DASHBOARD_PORT}", text)
    assert "torchvision" not in text


def test_mlflow_compose_postgres_and_minio():
    compose = load("mlflow/compose.yaml")
    services = compose["services"]
    assert {"postgres", "minio", "mlflow"} <= set(services)
    mlflow = services["mlflow"]
    assert f"${{BIND_ADDRESS:-127.0.0.1}}:{MLFLOW_PORT}:{MLFLOW_PORT}" in mlflow["ports"]
    command = mlflow["command"]
    assert "--serve-artifacts" in command and "s3://mlflow/" in command and f"--port {MLFLOW_PORT}" in command
    assert mlflow["environment"]["BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert services["minio"]["ports"] == ["${BIND_ADDRESS:-127.0.0.1}:9000:9000", "${BIND_ADDRESS:-127.0.0.1}:9001:9001"]
    # secrets come from the environment, never from the file
    assert "${POSTGRES_PASSWORD:?" in (DEPLOY / "mlflow" / "compose.yaml").read_text()
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.fixture
def compose_mlflow_command(tmp_path):
    """Runs the compose file's mlflow command in /bin/sh as the container would, with `pip` and `mlflow`
    replaced by scripts that record their arguments (Docker cannot run here)."""
    command = load("mlflow/compose.yaml")["services"]["mlflow"]["command"].replace("$$", "$")
    for name in ("pip", "mlflow"):
        stub = tmp_path / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/calls\n')
        stub.chmod(0o755)

    def run(admin_password: str) -> tuple[subprocess.CompletedProcess, str]:
        env = {
            "PATH": f"{tmp_path}:/usr/bin:/bin",
            "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
            "BACKEND_STORE_URI": "postgresql+psycopg://db",
        }
        assert command.startswith("/bin/sh -c ")
        done = subprocess.run(["/bin/sh", "-c", shlex.split(command)[2]], env=env, capture_output=True, text=True, timeout=30)
        calls = tmp_path / "calls"
        return done, calls.read_text() if calls.exists() else ""

    return run


def test_mlflow_compose_requires_authentication_with_a_non_default_admin_password(compose_mlflow_command):
    environment = load("mlflow/compose.yaml")["services"]["mlflow"]["environment"]
    assert environment["MLFLOW_AUTH_ADMIN_PASSWORD"] == "${MLFLOW_ADMIN_PASSWORD:?set MLFLOW_ADMIN_PASSWORD}"
    assert environment["MLFLOW_FLASK_SERVER_SECRET_KEY"].startswith("${MLFLOW_FLASK_SERVER_SECRET_KEY:?")

    done, calls = compose_mlflow_command("password1234")
    assert done.returncode != 0 and "MLFLOW_ADMIN_PASSWORD" in done.stderr and calls == ""

    done, calls = compose_mlflow_command("s3cret-Admin-pw")
    assert done.returncode == 0, done.stderr
    pip, server = calls.splitlines()
    assert "mlflow[auth]==3.17.2" in pip  # Flask-WTF: the basic-auth app does not start without it
    assert server.startswith("mlflow server ") and "--app-name basic-auth" in server
    assert "--backend-store-uri postgresql+psycopg://db" in server


@pytest.mark.parametrize("script", ["local/cluster", "local/mlflow"])
def test_local_scripts_are_executable_and_document_themselves(script):
    import os
    import subprocess

    path = DEPLOY / script
    assert os.access(path, os.X_OK)
    out = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and " up " in out.stdout and " down" in out.stdout
