"""What the driver asks the network before it relies on an address: whether a host is this machine, and
whether anything answers at a host and port (so a wrong address fails in seconds instead of hanging)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from orchestrator.errors import ClusterError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def is_loopback(address: str) -> bool:
    """True when the address points at this machine (so the cluster shares its files and localhost)."""
    host = urlsplit(address if "://" in address else f"http://{address}").hostname or ""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return host in (socket.gethostname(), socket.getfqdn()) or socket.gethostbyname(host).startswith("127.")
    except OSError:
        return False


def check_tcp(host: str, port: int, timeout_s: float, key: str, fix: str) -> None:
    """A TCP connect to host:port; ClusterError naming `key`, what happened and `fix` when nothing answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as err:
        raise ClusterError(f"{key}: nothing answers at {host}:{port} within {timeout_s:g} s ({err.strerror or err}); {fix}") from err
