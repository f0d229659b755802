"""The Ray Jobs API from the client side: the cluster's address, its token, and errors people can act on.

A thin adapter over `ray.job_submission.JobSubmissionClient`: it finds the address (`--address`, else
$RAY_ADDRESS), fails within seconds when nothing answers there, sends the Ray 2.60 auth token when one
exists (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, as Ray itself looks), and turns Ray's
exceptions (401/403, 404, connection errors, a head without its job agent) into ClusterError messages
that name the flag and the fix. Calls that go through the head's job agent (submit, stop) wait a while
for it: `with_job_agent`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.errors import ClusterError
from orchestrator.net import check_tcp

ADDRESS_FLAG = "--address"
DEFAULT_DASHBOARD_PORT = 8265
CONNECT_TIMEOUT_S = 5.0
TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "STOPPED")
# What a head whose dashboard agent is not running answers (HTTP 500, ray/dashboard/modules/job/job_head.py):
# to a submission, and to a stop. Its agent runs the jobs; one that failed at start-up (its port taken by
# another Ray on the machine) never comes back, while the agent of a head that just started is a few
# seconds behind its dashboard. Each answer itself comes after Ray's own 10 s wait for the agent.
NO_JOB_AGENT_ANSWERS = ("No available agent to submit job", "Failed to get head node agent")
JOB_AGENT_TIMEOUT_S = 30.0
JOB_AGENT_RETRY_INTERVAL_S = 2.0


def resolve_address(address: str | None) -> str:
    """The Jobs API URL: `--address`, else $RAY_ADDRESS; `host:port` becomes `http://host:port`."""
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise ClusterError(
            f"{ADDRESS_FLAG}: no Ray cluster given; pass {ADDRESS_FLAG} http://HEAD:{DEFAULT_DASHBOARD_PORT} "
            "(the head's dashboard) or set RAY_ADDRESS"
        )
    if address.startswith("ray://"):
        raise ClusterError(
            f"{ADDRESS_FLAG}: {address!r} is a Ray Client address; jobs go through the dashboard's Jobs API: "
            f"use http://HEAD:{DEFAULT_DASHBOARD_PORT}"
        )
    if "://" not in address:
        address = f"http://{address}"
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClusterError(f"{ADDRESS_FLAG}: {address!r} is not an http(s)://HOST:PORT address of a Ray dashboard")
    return address.rstrip("/")


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A TCP connect to the dashboard, so a wrong address fails in seconds instead of hanging."""
    parts = urlsplit(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    check_tcp(
        parts.hostname,
        port,
        timeout_s,
        ADDRESS_FLAG,
        f"start the cluster (deploy/local/cluster up) or fix {ADDRESS_FLAG} / RAY_ADDRESS "
        f"(the head's dashboard, port {DEFAULT_DASHBOARD_PORT} by default)",
    )


def auth_token() -> str | None:
    """The Ray auth token, from where Ray 2.60 looks for it; None when there is none or auth is disabled."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return None
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip()
    for path in (os.environ.get("RAY_AUTH_TOKEN_PATH"), Path.home() / ".ray" / "auth_token"):
        if path and Path(path).is_file():
            token = Path(path).read_text().strip()
            if token:
                return token
    return None


@contextmanager
def cluster_errors(address: str, job_id: str | None = None):
    """Ray's exceptions as ClusterError naming the flag and the fix (no traceback for people)."""
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as err:
        text = str(err)
        if "Forbidden" in text or "invalid" in text.lower():
            problem = "refused the auth token"
            fix = (
                "use the head's token: copy it from the head's ~/.ray/auth_token (or `ray get-auth-token` there) "
                "into ~/.ray/auth_token here, or set RAY_AUTH_TOKEN"
            )
        else:
            problem = "requires an auth token and none was found here"
            fix = (
                "put the head's token in ~/.ray/auth_token (`ray get-auth-token` on the head prints it) "
                "or set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH)"
            )
        raise ClusterError(f"{ADDRESS_FLAG}: the Ray cluster at {address} {problem}; {fix}") from err
    except ConnectionError as err:  # requests' and the builtin one
        raise ClusterError(f"{ADDRESS_FLAG}: lost the connection to {address} ({err}); is the cluster up?") from err
    except RuntimeError as err:
        text = str(err)
        if is_no_job_agent(err):
            raise ClusterError(no_job_agent_message(address)) from err
        if job_id and ("404" in text or "does not exist" in text):
            raise ClusterError(
                f"JOB_ID: no job {job_id!r} on the Ray cluster at {address}; `orchestrate jobs list {ADDRESS_FLAG} {address}` shows the ids"
            ) from err
        raise ClusterError(f"{ADDRESS_FLAG}: the Ray cluster at {address} refused the request: {text}") from err
    except Exception as err:  # requests' and Ray's own exceptions (timeouts, RPC errors)
        if err.__class__.__module__.startswith(("requests", "urllib3", "aiohttp", "ray")):
            raise ClusterError(f"{ADDRESS_FLAG}: talking to {address} failed: {err}") from err
        raise


def is_no_job_agent(err: Exception) -> bool:
    """Whether Ray's exception is the answer of a head whose job agent is not running."""
    return isinstance(err, RuntimeError) and any(answer in str(err) for answer in NO_JOB_AGENT_ANSWERS)


def no_job_agent_message(address: str, waited_s: float | None = None) -> str:
    """What a head without its job agent means, where to look, and the usual cause and fix."""
    from ray._private.ray_constants import DEFAULT_DASHBOARD_AGENT_LISTEN_PORT

    waited = f" (still after {waited_s:.0f} s)" if waited_s is not None else ""
    return (
        f"{ADDRESS_FLAG}: the Ray cluster at {address} has no job agent running on its head node{waited}, so it "
        'cannot take or stop jobs (Ray answers HTTP 500 "No available agent"). Look at dashboard_agent.log in the '
        'head\'s Ray session logs (<temp dir>/session_latest/logs/, /tmp/ray by default): "address already in use" '
        f"means another Ray on that machine holds the agent's port ({DEFAULT_DASHBOARD_AGENT_LISTEN_PORT} unless "
        "--dashboard-agent-listen-port says otherwise), the usual cause; restart the head with a free "
        "--dashboard-agent-listen-port (deploy/local/cluster picks its ports from --port-base)"
    )


def with_job_agent(address: str, request, job_id: str | None = None):
    """`request()`, a Jobs API call that goes through the head's job agent (submit, stop), asked again
    while the head answers that it has no agent, for at most JOB_AGENT_TIMEOUT_S; then a ClusterError
    that says what that means. Other failures as `cluster_errors`."""
    started = time.monotonic()
    warned = False
    with cluster_errors(address, job_id):
        while True:
            try:
                return request()
            except RuntimeError as err:
                waited_s = time.monotonic() - started
                if not is_no_job_agent(err):
                    raise
                if waited_s >= JOB_AGENT_TIMEOUT_S:
                    raise ClusterError(no_job_agent_message(address, waited_s)) from err
                if not warned:
                    from orchestrator.console import print_warning

                    print_warning(f"the Ray cluster at {address} has no job agent yet; asking again for up to {JOB_AGENT_TIMEOUT_S:.0f} s")
                    warned = True
                time.sleep(JOB_AGENT_RETRY_INTERVAL_S)


def connect(address: str | None):
    """A JobSubmissionClient for the cluster at `address` (or $RAY_ADDRESS), checked to answer.

    Returns (client, address)."""
    address = resolve_address(address)
    check_reachable(address)
    from ray.job_submission import JobSubmissionClient

    token = auth_token()
    # An explicit header: works whether or not RAY_AUTH_MODE was set before Ray was imported (Ray caches
    # the mode), and Ray leaves a user's own Authorization header alone.
    headers = {"Authorization": f"Bearer {token}"} if token else None
    # Ray lets $RAY_API_SERVER_ADDRESS / $RAY_ADDRESS override the address it is given; this one wins.
    os.environ["RAY_API_SERVER_ADDRESS"] = address
    with cluster_errors(address):
        # The constructor calls the (authenticated) version endpoint: a missing or refused token shows now.
        client = JobSubmissionClient(address, headers=headers)
    return client, address


def job_info(client, address: str, job_id: str):
    """The JobDetails of `job_id`, or a ClusterError naming JOB_ID when there is no such job."""
    with cluster_errors(address, job_id):
        return client.get_job_info(job_id)
