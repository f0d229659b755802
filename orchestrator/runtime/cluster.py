"""Connect to Ray: an embedded local cluster by default, the job's cluster inside a Ray job, or an address.

Inside a Ray job, Ray sets RAY_ADDRESS for the entrypoint; `cluster.address=null` then means that
cluster, never a private Ray started inside the job (hydra#2708).

An embedded Ray takes no fixed port: two `orchestrate train` in two terminals, or one beside a
`ray start --head`, must not take each other's ports (see `EMBEDDED_RAY_FREE_PORTS`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.config.schema import ClusterConfig
from orchestrator.errors import ClusterError
from orchestrator.net import check_tcp

log = logging.getLogger(__name__)

# Ray settings the orchestrator defaults (a user's own environment wins). Ray Train V2's controller
# polls its workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default) and each
# `ray.train.report` waits for that poll: at 2 s, a 10-epoch run spends up to ~20 s waiting (the figures:
# benchmarks/RESULTS.md, overhead). The variable is propagated to the controller.
RAY_ENV_DEFAULTS = {
    "RAY_TRAIN_V2_ENABLED": "1",
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
    "RAY_DEDUP_LOGS": "1",
    # a streamed run: no progress bar per operator every second, no INFO line per execution, from every process
    "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
    "RAY_DATA_LOG_LEVEL": "WARNING",
}
# For an embedded Ray only: Ray Train's PreemptionWatcher (one actor process per run, polling Ray's drain
# state every 5 s) watches for nodes an autoscaler or a cloud is about to take away; a local embedded
# Ray has none. Its start-up (one more process) is part of every sweep trial's fixed cost.
EMBEDDED_RAY_ENV_DEFAULTS = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}
# What `ray.init` would put on a fixed port, which an embedded Ray takes free instead: two Rays on one
# machine must not collide (a second Ray whose dashboard agent finds its port taken runs on without the
# agent, and its Jobs API answers every submission with HTTP 500 "No available agent"). The rest, ray.init
# leaves to the OS (GCS, raylet, agents' gRPC, metrics, worker ports) or does not start (Ray client
# server); the dashboard's 8265 is `dashboard_port`, chosen in `connect`. The dashboard agent's HTTP port
# (52365) is no ray.init argument (only a `ray start` option, ray-project/ray#34886): see `_ray_params`.
EMBEDDED_RAY_FREE_PORTS = ("dashboard_agent_listen_port",)
# How long the embedded Ray's processes get to exit after ray.shutdown() before they are killed.
EMBEDDED_SHUTDOWN_GRACE_S = 5.0


def check_address(address: str, key: str = "cluster.address", timeout_s: float = 5.0) -> None:
    """A TCP connect to host:port, so an unreachable cluster fails in seconds instead of hanging."""
    target = address if "://" in address else f"tcp://{address}"
    parts = urlsplit(target)
    host = parts.hostname
    port = parts.port or (10001 if parts.scheme == "ray" else 6379)
    if not host:
        raise ClusterError(f"{key}: {address!r} is not an address (use HOST:PORT or ray://HOST:PORT)")
    check_tcp(host, port, timeout_s, key, f"start the cluster, fix the address, or leave {key} unset for a local Ray")


def connect(cluster: ClusterConfig, runtime_env: dict | None = None) -> str:
    """Start or join Ray for this process. `runtime_env`: the project's additions to the user's
    cluster.runtime_env (the `py_modules` of user code). Returns a short description of where it runs."""
    import ray

    for name, value in RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if ray.is_initialized():
        return "the Ray cluster this process is already connected to"
    common = dict(log_to_driver=True, configure_logging=True, logging_level=logging.WARNING)
    address = cluster.address
    if address:
        if not address.startswith("ray://"):
            check_address(address, timeout_s=cluster.connect_timeout_s)
        ray.init(address=address, runtime_env=_merged_runtime_env(cluster.runtime_env, runtime_env), **common)
        return f"the Ray cluster at {address}"
    if os.environ.get("RAY_ADDRESS"):
        ray.init(runtime_env=_merged_runtime_env(cluster.runtime_env, runtime_env), **common)  # the job's cluster
        return f"the Ray cluster of this job ({os.environ['RAY_ADDRESS']})"
    for name, value in EMBEDDED_RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # Ray's find_free_port binds port 0 on every interface (its agents bind the node's IP and loopback).
    from ray._common.network_utils import find_free_port

    dashboard_port = None
    inherited = _user_code_pythonpath(runtime_env)
    if cluster.include_dashboard:
        # Ray's own state-API calls inside workers (Ray Train's PlacementGroupCleaner, at every run's end)
        # look for "the" local Ray and, with several on the machine, wait out a 12 s timeout: point them
        # at this one's dashboard, on a port chosen here so that it is known before the workers start.
        dashboard_port = find_free_port()
        host = "127.0.0.1" if cluster.dashboard_host in ("0.0.0.0", "::", "") else cluster.dashboard_host
        inherited["RAY_API_SERVER_ADDRESS"] = f"http://{host}:{dashboard_port}"
    # address="local": never join a stale cluster recorded in /tmp/ray/ray_current_cluster (a plain
    # ray.init(num_cpus=...) tries to join it, and fails when it is dead).
    with _environ(inherited), _ray_params({name: find_free_port() for name in EMBEDDED_RAY_FREE_PORTS}):
        ray.init(
            address="local",
            num_cpus=cluster.num_cpus,
            include_dashboard=cluster.include_dashboard,
            dashboard_host=cluster.dashboard_host,
            dashboard_port=dashboard_port,
            runtime_env=cluster.runtime_env or None,
            **common,
        )
    # Registered after ray.init's own handler, so it runs first (atexit is last in, first out).
    atexit.register(shutdown_embedded)
    return "an embedded local Ray"


def shutdown_embedded(grace_s: float = EMBEDDED_SHUTDOWN_GRACE_S) -> list[int]:
    """Shut the embedded Ray down and leave none of its processes behind; returns the pids it had to kill.

    ray.shutdown() stops the raylet and the GCS, and a worker normally exits with its raylet. One that
    does not (seen: a Ray Train controller whose core worker had shut down, its main thread blocked at
    interpreter exit) would live on orphaned, holding hundreds of MB. Every Ray process under this one
    is noted first; those still alive `grace_s` after the shutdown are killed, with a warning."""
    import psutil
    import ray

    try:
        session = [p for p in psutil.Process().children(recursive=True) if _is_ray_process(p)]
    except psutil.Error:
        session = []
    ray.shutdown()
    _, alive = psutil.wait_procs(session, timeout=grace_s)
    killed = []
    for process in alive:
        with contextlib.suppress(psutil.Error):
            name = " ".join(process.cmdline())[:80]
            process.kill()
            killed.append(process.pid)
            log.warning("killed %s (pid %d), left alive by Ray %g s after its shutdown", name, process.pid, grace_s)
    return killed


def _is_ray_process(process) -> bool:
    try:
        command = " ".join(process.cmdline())
    except Exception:  # psutil.Error: it ended or is not ours to read
        return False
    return command.startswith("ray::") or "/ray/" in command or "raylet" in command or "gcs_server" in command


@contextlib.contextmanager
def _ray_params(values: dict[str, int]):
    """`ray.init` with RayParams fields it has no argument for (`ray start` options, as the dashboard
    agent's port): ray.init builds one RayParams for the node it starts; these fill in what it leaves out."""
    from ray._private.parameter import RayParams

    original = RayParams.__init__

    @functools.wraps(original)
    def init(self, *args, **kwargs):
        original(self, *args, **{**values, **kwargs})

    RayParams.__init__ = init
    try:
        yield
    finally:
        RayParams.__init__ = original


def _merged_runtime_env(user: dict | None, ours: dict | None) -> dict | None:
    """The job's runtime_env on a cluster to join: cluster.runtime_env plus the project's additions."""
    env = dict(user or {})
    for key, value in (ours or {}).items():
        if key == "py_modules":
            env["py_modules"] = list(dict.fromkeys([*env.get("py_modules", []), *value]))
        else:
            env.setdefault(key, value)
    return env or None


def _user_code_pythonpath(ours: dict | None) -> dict[str, str]:
    """For an embedded Ray, whose processes inherit this one's environment: the folders of the user's
    modules (the `py_modules` of `ours`, each found on this process's sys.path) as PYTHONPATH, instead
    of a runtime_env. A job without a runtime_env runs its tasks in the worker processes Ray starts with
    the cluster and keeps reusing; one with a runtime_env gets new worker processes, each started
    through Ray's setup_worker (one more Python process that imports Ray), and a sweep's first trials
    wait for them."""
    folders = [str(Path(module).parent) for module in (ours or {}).get("py_modules", [])]
    if not folders:
        return {}
    existing = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys([*folders, *existing]))}


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    """os.environ with `values` set while Ray starts its processes (they inherit them), then restored."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cluster_resources() -> dict[str, float]:
    """Total resources of the connected cluster."""
    import ray

    return ray.cluster_resources()


def embedded_cpus(cluster: ClusterConfig) -> int | None:
    """The CPUs an embedded Ray of `cluster` would have (cluster.num_cpus, else what Ray detects on this
    machine), known before it starts; None when Ray is a cluster to join (cluster.address, RAY_ADDRESS)."""
    if cluster.address or os.environ.get("RAY_ADDRESS"):
        return None
    from ray._private.utils import get_num_cpus

    return cluster.num_cpus or get_num_cpus()


def check_fits(num_workers: int, cpus_per_worker: int, use_gpu: bool, resources: dict[str, float] | None = None) -> None:
    """Refuse, naming the keys, a request the whole cluster can never satisfy (instead of waiting forever).
    `resources`: the cluster's totals when known without asking Ray (default: the connected cluster's)."""
    total = resources if resources is not None else cluster_resources()
    cpus = total.get("CPU", 0)
    gpus = total.get("GPU", 0)
    if use_gpu and gpus < num_workers:
        raise ClusterError(
            f"scaling.use_gpu=true asks for {num_workers} GPU(s) but the cluster has {gpus:g}; "
            "set scaling.use_gpu=false or connect to a cluster with GPUs (cluster.address)"
        )
    if num_workers * cpus_per_worker > cpus:
        raise ClusterError(
            f"scaling.num_workers={num_workers} x scaling.cpus_per_worker={cpus_per_worker} needs "
            f"{num_workers * cpus_per_worker} CPUs but the cluster has {cpus:g}; lower scaling.num_workers "
            "or scaling.cpus_per_worker, or connect to a bigger cluster (cluster.address)"
        )
