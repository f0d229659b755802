"""`orchestrate jobs`: the Ray jobs of a cluster: list them, and show, follow or stop one.

    orchestrate jobs list [--json] --address http://head:8265
    orchestrate jobs status JOB_ID [--json] --address http://head:8265
    orchestrate jobs logs JOB_ID [--follow] --address http://head:8265
    orchestrate jobs stop JOB_ID --address http://head:8265

--address defaults to $RAY_ADDRESS. The listing names each job's MLflow run(s): the runs tagged
`ray.job_id` = the job id in the tracking store the job was submitted with (`orchestrate submit`
records it in the job's metadata), when that store answers from here. The listing fits the terminal:
job ids stay whole, run ids may show a unique prefix and the least important columns may be left out
(it says which); --json prints every job whole, for scripts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from orchestrator.console import Column
from orchestrator.errors import OrchestratorError

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 60.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    """`ACTION [JOB_ID] [--address URL] [--follow] [--json]`; a missing JOB_ID is refused here, before any connection."""
    parser = argparse.ArgumentParser(
        prog="orchestrate jobs",
        description="The Ray jobs of a cluster.",
        epilog=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["list", "status", "logs", "stop"])
    parser.add_argument("job_id", nargs="?", metavar="JOB_ID", help="the job's submission id (status, logs, stop)")
    parser.add_argument("--address", help="the cluster's dashboard / Jobs API, http://HEAD:8265 (default: $RAY_ADDRESS)")
    parser.add_argument("--follow", "-f", action="store_true", help="logs: follow the log until the job ends")
    parser.add_argument("--json", action="store_true", help="list, status: print JSON (full ids, UTC times) for scripts")
    args = parser.parse_args(argv)
    if args.action != "list" and not args.job_id:
        parser.error(f"`orchestrate jobs {args.action}` needs a JOB_ID (see `orchestrate jobs list`)")
    if args.follow and args.action != "logs":
        parser.error("--follow goes with `logs`")
    if args.json and args.action not in ("list", "status"):
        parser.error("--json goes with `list` and `status`")
    return args


def when(ms: int | None) -> str:
    """Ray's job times (milliseconds since the epoch) in local time."""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def utc(ms: int | None) -> str | None:
    """Ray's job times as ISO 8601 in UTC, for --json."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat() if ms else None


def job_record(job, runs: list[str]) -> dict:
    """One job as --json prints it: these keys, in this order, whatever Ray adds to its own records."""
    return {
        "job_id": job.submission_id,
        "status": str(job.status),
        "start_time": utc(job.start_time),
        "end_time": utc(job.end_time),
        "entrypoint": job.entrypoint,
        "message": job.message or None,
        "mlflow_run_ids": runs,
    }


def runs_by_job(jobs) -> dict[str, list[str]]:
    """The MLflow run ids of each job, looked up in the tracking store recorded at submission."""
    from orchestrator.jobs.submit import META_TRACKING_URI
    from orchestrator.tracking.store import runs_of_jobs

    by_uri: dict[str, list[str]] = {}
    for job in jobs:
        uri = (job.metadata or {}).get(META_TRACKING_URI)
        if uri and job.submission_id and urlsplit(uri).scheme in ("http", "https", "sqlite"):
            by_uri.setdefault(uri, []).append(job.submission_id)
    found: dict[str, list[str]] = {}
    for uri, job_ids in by_uri.items():
        if not _store_answers(uri):
            continue
        try:
            found.update(runs_of_jobs(uri, job_ids))
        except Exception as err:  # noqa: BLE001 (an unreadable store only leaves the column empty)
            log.warning("could not search %s for the runs of the jobs: %s", uri, err)
    return found


def _store_answers(uri: str) -> bool:
    from orchestrator.errors import TrackingError
    from orchestrator.tracking.store import check_reachable, sqlite_path

    path = sqlite_path(uri)
    if path is not None and not path.startswith("/"):
        return False  # relative to the job's own working directory on the cluster
    try:
        check_reachable(uri, timeout_s=2.0)
    except (TrackingError, OrchestratorError):
        return False
    if path is not None:
        from pathlib import Path

        return Path(path).is_file()
    return True


# Most important first: a narrow terminal leaves out the last ones (`list_jobs` says which).
LIST_COLUMNS = [
    Column("job id", required=True),
    Column("status"),
    Column("MLflow run(s)", shorten=True),
    Column("start"),
    Column("end"),
    Column("entrypoint", wrap=True),
]


def list_jobs(client, address: str, as_json: bool = False) -> int:
    """The cluster's submitted jobs, oldest first, with their MLflow runs (one run id per line)."""
    from orchestrator.console import console, print_json, print_table
    from orchestrator.jobs.client import cluster_errors

    with cluster_errors(address):
        jobs = [job for job in client.list_jobs() if job.submission_id]
    jobs.sort(key=lambda job: job.start_time or 0)
    runs = runs_by_job(jobs) if jobs else {}
    if as_json:
        print_json([job_record(job, runs.get(job.submission_id, [])) for job in jobs])
        return 0
    if not jobs:
        console.print(f"no jobs on the Ray cluster at {address}")
        return 0
    rows = [
        [
            job.submission_id,
            str(job.status),
            "\n".join(runs.get(job.submission_id, [])) or "-",
            when(job.start_time),
            when(job.end_time),
            job.entrypoint or "-",
        ]
        for job in jobs
    ]
    print_table(f"Ray jobs at {address}", LIST_COLUMNS, rows, see_all="`orchestrate jobs status JOB_ID`, --json")
    return 0


def show_status(client, address: str, job_id: str, as_json: bool = False) -> int:
    """One job: status, Ray's message, times, entrypoint, MLflow runs (whole, one per line)."""
    from orchestrator.console import print_fields, print_json
    from orchestrator.jobs.client import job_info

    job = job_info(client, address, job_id)
    runs = runs_by_job([job]).get(job_id, [])
    if as_json:
        print_json(job_record(job, runs))
        return 0
    print_fields(
        f"job {job_id}",
        [
            ("status", str(job.status)),
            ("message", job.message or "-"),
            ("start", when(job.start_time)),
            ("end", when(job.end_time)),
            ("entrypoint", job.entrypoint or "-"),
            ("MLflow run(s)", "\n".join(runs) or "-"),
        ],
    )
    return 0


def show_logs(client, address: str, job_id: str, follow_log: bool) -> int:
    """The job's log so far; with --follow, until the job ends (exit 0 only if it SUCCEEDED)."""
    from orchestrator.console import print_raw
    from orchestrator.jobs.client import cluster_errors, job_info

    job_info(client, address, job_id)  # a clear error for an unknown id, before any streaming
    if follow_log:
        from orchestrator.jobs.submit import follow

        status = follow(client, address, job_id)
        return 0 if status == "SUCCEEDED" else 1
    with cluster_errors(address, job_id):
        print_raw(client.get_job_logs(job_id))
    return 0


def stop(client, address: str, job_id: str) -> int:
    """Ask Ray to stop the job (SIGTERM, then SIGKILL after Ray's grace period) and wait for the end."""
    from orchestrator.console import console
    from orchestrator.jobs.client import TERMINAL_STATUSES, job_info, with_job_agent

    job = job_info(client, address, job_id)
    if str(job.status) in TERMINAL_STATUSES:
        console.print(f"job {job_id} had already ended: {job.status}")
        return 0
    with_job_agent(address, lambda: client.stop_job(job_id), job_id)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while str(job.status) not in TERMINAL_STATUSES and time.monotonic() < deadline:
        time.sleep(1.0)
        job = job_info(client, address, job_id)
    console.print(f"job {job_id}: {job.status}")
    return 0 if str(job.status) in TERMINAL_STATUSES else 1


def main() -> None:
    from orchestrator.errors import report_and_exit
    from orchestrator.jobs.client import connect

    logging.basicConfig(level=logging.WARNING)
    args = parse_args(sys.argv[1:])
    try:
        client, address = connect(args.address)
        if args.action == "list":
            code = list_jobs(client, address, args.json)
        elif args.action == "status":
            code = show_status(client, address, args.job_id, args.json)
        elif args.action == "logs":
            code = show_logs(client, address, args.job_id, args.follow)
        else:
            code = stop(client, address, args.job_id)
    except OrchestratorError as err:
        report_and_exit(err)
    sys.exit(code)
