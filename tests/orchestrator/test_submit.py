"""`orchestrate submit` / `jobs`: the pure logic (argument parsing, what is uploaded, tracking checks,
token lookup, the job id of a run). No cluster: the real end-to-end tests are in tests/deploy/."""

from __future__ import annotations

import json
import os
import shlex

import pytest

from orchestrator.commands.submit import parse_args
from orchestrator.errors import ClusterError, ConfigError
from orchestrator.jobs import client as job_client
from orchestrator.jobs import submit
from orchestrator.tracking.store import ray_job_id, run_tags


def test_parse_args_splits_options_and_command(tmp_path):
    options = parse_args(
        [
            "--address",
            "http://h:8265",
            "--no-wait",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--pip",
            "rich",
            "--working-dir",
            str(tmp_path),
            "--",
            "train",
            "model=cnn",
            "-m",
        ]
    )
    assert options.address == "http://h:8265" and options.wait is False
    assert options.env_vars == {"A": "1", "B": "x=y"} and options.pip == ["rich"]
    assert options.verb == "train" and options.overrides == ["model=cnn", "-m"]
    assert options.working_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--address", "x"], "give the command after --"),
        (["--", "nosuchverb"], "unknown verb 'nosuchverb'"),
        (["--", "jobs", "list"], "unknown verb 'jobs'"),
        (["--env", "NOEQUALS", "--", "train"], "--env 'NOEQUALS': use KEY=VALUE"),
    ],
)
def test_parse_args_refuses_bad_input(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_entrypoint_and_submission_id():
    command = submit.entrypoint("train", ["model=cnn", "model.layers=[64, 32]"])
    assert shlex.split(command) == ["python", "-m", "orchestrator", "train", "model=cnn", "model.layers=[64, 32]"]
    job_id = submit.submission_id("train")
    assert job_id.startswith("orchestrate-train-") and len(job_id.split("-")) == 5
    assert submit.submission_id("train") != job_id


def test_runtime_env_carries_job_id_env_and_excludes(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    options = parse_args(["--env", "A=1", "--pip", "rich", "--working-dir", str(tmp_path), "--", "train"])
    env = submit.runtime_env(options, "orchestrate-train-x")
    assert env["env_vars"] == {"A": "1", "MLFLOW_TRACKING_URI": "http://mlflow:5000", "ORCHESTRATOR_RAY_JOB_ID": "orchestrate-train-x"}
    assert env["pip"] == ["rich"] and env["working_dir"] == str(tmp_path.resolve())
    assert {".git", ".venv", "mlruns.db", "ray_results/", ".env", "*.pem"} <= set(env["excludes"])


def test_working_dir_upload_leaves_out_stores_outputs_and_credentials(tmp_path):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "model.py").write_text("x = 1\n")
    kept = {"mypkg/model.py", "train.csv"}
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    for name in [
        ".git/objects/ab",
        ".venv/bin/python",
        "mlruns.db",
        "mlruns/0/meta.yaml",
        "mlartifacts/x",
        "ray_results/run/ckpt",
        "outputs/2026/x.log",
        "multirun/x",
        ".env",
        "secrets/key.pem",
        ".ssh/id_rsa",
        "id_ed25519",
        ".netrc",
        "credentials",
        "sub/.aws/credentials",
        "big/ignored.bin",
    ]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("never uploaded")
    (tmp_path / ".gitignore").write_text("big/\n")  # Ray honours .gitignore too
    total, biggest = submit.working_dir_size(tmp_path, submit.EXCLUDES)
    assert {name for _, name in biggest} | {"mypkg/model.py"} >= kept
    expected = sum((tmp_path / name).stat().st_size for name in [*kept, ".gitignore"])
    assert total == expected


def test_working_dir_over_rays_limit_is_refused_before_upload(tmp_path):
    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE

    with open(tmp_path / "data.bin", "wb") as handle:  # sparse: no disk space used
        handle.truncate(GCS_STORAGE_MAX_SIZE + 1)
    with pytest.raises(ConfigError) as err:
        submit.check_upload_size(tmp_path, submit.EXCLUDES)
    assert "--working-dir" in str(err.value) and "over Ray's limit of 512 MiB" in str(err.value)
    assert "data.bin" in str(err.value) and ".rayignore" in str(err.value)


def test_job_tracking_uri_prefers_the_override():
    assert submit.job_tracking_uri(["a=1", "tracking.uri=http://x:5000"], {"MLFLOW_TRACKING_URI": "http://y:1"}) == "http://x:5000"
    assert submit.job_tracking_uri(["++tracking.uri='http://z:5000'"], {}) == "http://z:5000"
    assert submit.job_tracking_uri(["a=1"], {"MLFLOW_TRACKING_URI": "http://y:1"}) == "http://y:1"
    assert submit.job_tracking_uri(["tracking.uri=null"], {}) is None


def test_tracking_the_cluster_cannot_reach_is_refused_or_warned():
    remote, local = "http://10.1.2.3:8265", "http://127.0.0.1:8265"
    with pytest.raises(ConfigError, match="tracking.uri: sqlite:///mlruns.db is relative"):
        submit.check_tracking_for_cluster("sqlite:///mlruns.db", remote)
    with pytest.raises(ConfigError, match="tracking.uri: the cluster runs on this machine"):
        submit.check_tracking_for_cluster("http://127.0.0.1:1", local)
    assert submit.check_tracking_for_cluster("sqlite:////abs/mlruns.db", local) == []
    [warning] = submit.check_tracking_for_cluster("http://localhost:5000", remote)
    assert "points at localhost" in warning and "tracking.uri=http://MLFLOW_HOST:PORT" in warning
    [warning] = submit.check_tracking_for_cluster("sqlite:////abs/mlruns.db", remote)
    assert "shared storage" in warning
    [warning] = submit.check_tracking_for_cluster(None, remote)
    assert "lost" in warning


def test_address_resolution(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ClusterError, match="--address: no Ray cluster given"):
        job_client.resolve_address(None)
    monkeypatch.setenv("RAY_ADDRESS", "head:8265")
    assert job_client.resolve_address(None) == "http://head:8265"
    assert job_client.resolve_address("https://h/") == "https://h"
    with pytest.raises(ClusterError, match="Ray Client address"):
        job_client.resolve_address("ray://h:10001")
    from orchestrator.net import is_loopback

    assert is_loopback("http://127.0.0.1:1") and not is_loopback("http://10.1.2.3:1")


def test_unreachable_address_fails_fast_naming_the_flag():
    with pytest.raises(ClusterError, match="--address: nothing answers at 127.0.0.1:1"):
        job_client.check_reachable("http://127.0.0.1:1", timeout_s=2)


def test_a_head_without_its_job_agent_is_asked_again_then_explained(monkeypatch):
    """Ray's own answers (job_head.py) to a submission and to a stop when the head has no job agent: asked
    again while the agent may still be starting, then an error that says what it means, never the bare 500."""
    monkeypatch.setattr(job_client, "JOB_AGENT_RETRY_INTERVAL_S", 0.0)
    answers = [
        RuntimeError("Request failed with status code 500: No available agent to submit job, please try again later.."),
        RuntimeError("Request failed with status code 500: Traceback ... TimeoutError: Failed to get head node agent within 10 seconds."),
        "raysubmit_1",
    ]

    def request():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert job_client.with_job_agent("http://h:8265", request) == "raysubmit_1"  # the agent came up
    monkeypatch.setattr(job_client, "JOB_AGENT_TIMEOUT_S", 0.0)
    answers[:] = [RuntimeError("Request failed with status code 500: No available agent to submit job, please try again later..")]
    with pytest.raises(ClusterError) as error:
        job_client.with_job_agent("http://h:8265", request)
    message = str(error.value)
    assert "--address: the Ray cluster at http://h:8265 has no job agent running on its head node" in message
    assert "dashboard_agent.log" in message and "another Ray on that machine holds the agent's port" in message
    answers[:] = [RuntimeError("Request failed with status code 500: something else")]  # other failures as before
    with pytest.raises(ClusterError, match="refused the request: Request failed with status code 500: something else"):
        job_client.with_job_agent("http://h:8265", request)


def test_auth_token_is_found_where_ray_looks(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    assert job_client.auth_token() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-file\n")
    assert job_client.auth_token() == "from-file"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert job_client.auth_token() == "from-env"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert job_client.auth_token() is None


def test_run_tags_carry_the_submission_id_not_rays_internal_job_id(monkeypatch):
    """Ray 2.60 (checked on a real cluster): a job's driver gets the submission id only inside
    RAY_JOB_CONFIG_JSON_ENV_VAR; its tasks and actors get RAY_JOB_ID=<hex>, never the submission id."""
    monkeypatch.delenv("ORCHESTRATOR_RAY_JOB_ID", raising=False)
    monkeypatch.setenv("RAY_JOB_ID", "02000000")
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    assert ray_job_id() is None and "ray.job_id" not in run_tags("train", {})
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps({"runtime_env": {}, "metadata": {"job_submission_id": "raysubmit_1"}}))
    assert run_tags("train", {})["ray.job_id"] == "raysubmit_1"
    monkeypatch.setenv("ORCHESTRATOR_RAY_JOB_ID", "orchestrate-train-1")
    assert run_tags("train", {})["ray.job_id"] == "orchestrate-train-1"
    assert os.environ["RAY_JOB_ID"] == "02000000"


def test_a_jobs_driver_leaves_rays_unpacked_working_dir(tmp_path, monkeypatch):
    from orchestrator.jobs.driver import leave_unpacked_working_dir

    unpacked = tmp_path / "session_x" / "runtime_resources" / "working_dir_files" / "_ray_pkg_ab"
    (unpacked / "mypkg").mkdir(parents=True)
    (unpacked / "mypkg" / "__init__.py").write_text("X = 1\n")
    monkeypatch.chdir(unpacked)
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    assert leave_unpacked_working_dir() is None  # not a job's driver
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")
    private = leave_unpacked_working_dir()
    assert private and os.getcwd() == private and (os.path.isfile(os.path.join(private, "mypkg", "__init__.py")))
    import shutil

    shutil.rmtree(unpacked)  # what a second node on the same host does to Ray's folder
    assert os.getcwd() == private
    shutil.rmtree(private)
