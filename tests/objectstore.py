"""A real S3-compatible server for the lake tests: moto's server on 127.0.0.1, over HTTP.

moto keeps its buckets in this process's memory, so the server can be stopped (clients get
"connection refused", as from a store that went away) and started again on the same port
with every object still there. Keys are checked for shape only; each test uses its own
bucket.

Usage::

    with running_object_store() as store:
        bucket = store.new_bucket()          # "lake-1a2b3c…"
        env = store.env                      # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
"""

from __future__ import annotations

import contextlib
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

KEY_ID = "AKIAETLTESTLAKE00001"
SECRET = "etl-test-lake-secret-000000000000000001"


@dataclass
class ObjectStore:
    """A running moto server: where it is, and the keys the tests hand the workers."""

    host: str
    port: int
    key_id: str = KEY_ID
    secret: str = SECRET
    server: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret}

    def new_bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:16]}"
        request = urllib.request.Request(f"http://{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        return name

    def objects(self, bucket: str) -> list[str]:
        """Every key in `bucket` (moto's listing; no client library needed)."""
        import xml.etree.ElementTree as ET

        keys: list[str] = []
        token = ""
        while True:
            url = f"http://{self.endpoint}/{bucket}?list-type=2{token}"
            with urllib.request.urlopen(url, timeout=30) as response:
                root = ET.fromstring(response.read())
            ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
            keys += [node.text or "" for node in root.iter(f"{ns}Key")]
            following = root.find(f"{ns}NextContinuationToken")
            if following is None or not following.text:
                return keys
            token = f"&continuation-token={urllib.request.quote(following.text)}"

    def read(self, bucket: str, key: str) -> bytes:
        import boto3  # moto's own dependency

        client = boto3.client(
            "s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1",
            aws_access_key_id=self.key_id, aws_secret_access_key=self.secret,
        )  # fmt: skip
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def stop(self) -> None:
        """Refuse connections from now on (the objects are kept for `start`)."""
        self.server.stop()

    def start(self) -> None:
        """Serve again on the same port."""
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self.server.start()


@contextlib.contextmanager
def running_object_store() -> Iterator[ObjectStore]:
    """Start moto's S3 server on a free loopback port; stop it on leaving."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    store = ObjectStore("127.0.0.1", port, server=server)
    try:
        yield store
    finally:
        with contextlib.suppress(Exception):
            store.server.stop()
