"""A real local S3-compatible endpoint for tests: moto's standalone server on 127.0.0.1, in a thread of this process.

    with s3_endpoint() as s3:
        s3.bucket("data")
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        pq.write_to_dataset(table, "s3://data/prefix")  # pyarrow, Ray Data and Ray Train reach it through s3.env

pyarrow (and so Ray) reads AWS_ENDPOINT_URL, the keys and the region from the environment; the scheme (http) comes
from the URL. Ray's processes inherit the environment of ray.init: set `env` before it, or pass it as
runtime_env={"env_vars": env}. moto accepts any credentials unless its IAM checks are switched on, and keeps its
buckets in module-level state shared by every server in the process: the server is reset when the context exits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def bucket(self, name: str) -> str:
        """Create a bucket (idempotent) and return its URI, s3://name."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        client.create_bucket(Bucket=name)
        return f"s3://{name}"


@contextmanager
def s3_endpoint() -> Iterator[S3Endpoint]:
    """Start moto's S3 server on a free port of 127.0.0.1; stop it and clear its state at exit."""
    import requests
    from moto.server import ThreadedMotoServer

    werkzeug_log = logging.getLogger("werkzeug")  # one INFO line per request otherwise
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: the OS picks, no race
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    try:
        yield S3Endpoint(url=url, env=env)
    finally:
        try:
            requests.post(f"{url}/moto-api/reset", timeout=10)  # moto's backends outlive the server otherwise
        finally:
            server.stop()
            werkzeug_log.setLevel(level)
