"""An S3-compatible server for the tests: moto's `moto_server` (deploy/cluster.py's `S3`), on
127.0.0.1, one per session.

`moto_s3` starts it as a subprocess (its own state, in memory) and stops it at the end;
`S3Server.bucket()` makes a fresh bucket. `RecordingProxy` sits in front of it and keeps the
headers of every request that reaches the store, so a test can show what a client sent there
(the redirect tests: the API key must not reach the store's origin).

Credentials are fixed dummy values (`AWS_ENV`), set on each client here; a test that builds the
server's own client through boto3's chain sets them in the environment with monkeypatch (and
`AWS_EC2_METADATA_DISABLED`, so that no lookup ever leaves loopback).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deploy.cluster import AWS_ENV, S3

__all__ = ["AWS_ENV", "RecordingProxy", "S3Server", "moto_s3", "start_moto"]


class S3Server(S3):
    """deploy/cluster.py's `S3` with no bucket of its own, its log `<root>/moto.log`: each test
    takes a fresh bucket (`bucket()`)."""

    def __init__(self, root: Path) -> None:
        super().__init__("moto", root / "moto.log", bucket_name="")

    def bucket(self) -> str:
        """A new, empty bucket."""
        return self.new_bucket()

    def keys(self, bucket: str = "", prefix: str = "") -> list[str]:  # type: ignore[override]
        """Every object key in `bucket`, sorted."""
        return super().keys(prefix, bucket)


def start_moto(root: Path) -> S3Server:
    """moto_server on a free loopback port, its log in `root`; `stop()` it."""
    return S3Server(root).start()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RecordingProxy:
    """A loopback HTTP proxy to `target` that records each request's method, path, headers;
    `delay` seconds before each answer model a store farther away than loopback."""

    target: str
    seen: list[Seen] = field(default_factory=list)
    delay: float = 0.0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> RecordingProxy:
        proxy = self
        host, port = self.target.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                proxy.seen.append(Seen(self.command, self.path, headers))
                length = int(headers.get("content-length", "0") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.delay:
                    time.sleep(proxy.delay)
                upstream = http.client.HTTPConnection(host, int(port), timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection"):
                            self.send_header(name, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
