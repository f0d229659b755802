"""`orchestrate jobs list|status` as a pipe reads them (80 columns), and as --json: Ray's own JobDetails
and a real MLflow store with the jobs' runs; only the Jobs API client is a stand-in (the cluster runs in
tests/deploy/test_local_cluster.py)."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from ray.job_submission import JobDetails, JobStatus, JobType
from tables import line_with, read_table

from orchestrator.commands import jobs
from orchestrator.jobs.submit import META_TRACKING_URI

ADDRESS = "http://127.0.0.1:8265"
COMMAND = "python -m orchestrator train data=digits model=mlp trainer.max_epochs=2 scaling.num_workers=2"


class JobsAPI:
    """The two calls of Ray's JobSubmissionClient that `jobs list|status` make."""

    def __init__(self, details: list[JobDetails]):
        self.details = details

    def list_jobs(self) -> list[JobDetails]:
        return self.details

    def get_job_info(self, job_id: str) -> JobDetails:
        return next(job for job in self.details if job.submission_id == job_id)


@pytest.fixture(scope="module")
def cluster_jobs(tmp_path_factory) -> tuple[JobsAPI, dict[str, list[str]]]:
    """Three jobs as `orchestrate submit` leaves them: a run, a sweep (its run and 3 trials), none yet."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'mlruns.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("orchestrator")
    details, runs = [], {}
    for i, (status, num_runs) in enumerate(((JobStatus.SUCCEEDED, 1), (JobStatus.FAILED, 4), (JobStatus.RUNNING, 0))):
        job_id = f"orchestrate-train-20261207-13413{i}-2e4aa{i}"
        runs[job_id] = [client.create_run(exp_id, tags={"ray.job_id": job_id}).info.run_id for _ in range(num_runs)]
        details.append(
            JobDetails(
                type=JobType.SUBMISSION,
                submission_id=job_id,
                status=status,
                entrypoint=COMMAND,
                start_time=1796651496000 + i * 60_000,
                end_time=None if status == JobStatus.RUNNING else 1796651596000 + i * 60_000,
                message="Job finished successfully." if status == JobStatus.SUCCEEDED else None,
                metadata={META_TRACKING_URI: uri},
            )
        )
    return JobsAPI(details), runs


def runs_column(text: str) -> dict[str, list[str]]:
    """job id -> what `jobs list` shows under MLflow run(s) (job id, status, runs), one run per line."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"─"})
    shown: dict[str, list[str]] = {}
    for line in lines[rule + 1 :]:
        if not line[:1].isspace():
            if len(line.split()) != 3:
                break  # the line under the table
            job_id, _, cell = line.split()
            shown[job_id] = []
        else:
            [cell] = line.split()
        if cell != "-":
            shown[job_id].append(cell)
    return shown


def test_jobs_list_at_80_columns_keeps_every_job_id_whole_and_greppable(cluster_jobs, pipe_console):
    api, runs = cluster_jobs
    assert jobs.list_jobs(api, ADDRESS) == 0
    text = pipe_console.getvalue()

    for job in api.details:
        row = line_with(text, job.submission_id)  # `orchestrate jobs list | grep JOB_ID`
        assert row.split()[:2] == [job.submission_id, str(job.status)]
    headers, rows, after = read_table(text)
    assert headers == ["job id", "status", "MLflow run(s)"]  # most important first, each whole
    # run ids: a unique prefix each (32 hex digits do not fit beside a job id), one per line
    shown = runs_column(text)
    assert {job: [run_id[:8] for run_id in job_runs] for job, job_runs in runs.items()} == shown
    note = " ".join(" ".join(after).split())
    assert "MLflow run(s) cut to unique prefixes; not shown: start, end, entrypoint" in note and "--json" in note
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())


def test_jobs_list_and_status_as_json_give_every_id_whole(cluster_jobs, pipe_console):
    api, runs = cluster_jobs
    jobs.list_jobs(api, ADDRESS, as_json=True)
    listed = json.loads(pipe_console.getvalue())
    assert [job["job_id"] for job in listed] == list(runs)
    assert [job["mlflow_run_ids"] for job in listed] == list(runs.values())
    assert list(listed[0]) == ["job_id", "status", "start_time", "end_time", "entrypoint", "message", "mlflow_run_ids"]
    assert listed[0]["status"] == "SUCCEEDED" and listed[0]["start_time"] == "2026-12-07T13:51:36+00:00"
    assert listed[2]["end_time"] is None and listed[2]["entrypoint"] == COMMAND

    pipe_console.truncate(0)
    pipe_console.seek(0)
    sweep_job = list(runs)[1]
    jobs.show_status(api, ADDRESS, sweep_job, as_json=True)
    assert json.loads(pipe_console.getvalue()) == listed[1]


def test_jobs_status_at_80_columns_shows_every_run_id_whole(cluster_jobs, pipe_console):
    api, runs = cluster_jobs
    sweep_job = list(runs)[1]
    jobs.show_status(api, ADDRESS, sweep_job)
    text = pipe_console.getvalue()
    assert line_with(text, sweep_job) == f"job {sweep_job}"
    assert line_with(text, "entrypoint").split(None, 1)[1] == COMMAND  # whole, on one line
    assert [line_with(text, run_id).split()[-1] for run_id in runs[sweep_job]] == runs[sweep_job]


@pytest.mark.parametrize("argv", [["logs", "J", "--json"], ["stop", "J", "--json"]])
def test_json_goes_with_list_and_status_only(argv, capsys):
    assert jobs.parse_args(["list", "--json"]).json and jobs.parse_args(["status", "J", "--json"]).json
    with pytest.raises(SystemExit) as exit_info:
        jobs.parse_args(argv)
    assert exit_info.value.code == 2 and "--json goes with `list` and `status`" in capsys.readouterr().err
