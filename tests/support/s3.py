"""An S3-compatible server for the tests: moto's `moto_server`, on 127.0.0.1, one per session.

`moto_s3` starts it as a subprocess (its own state, in memory) and stops it at the end;
`S3Server.bucket()` makes a fresh bucket. `RecordingProxy` sits in front of it and keeps the
headers of every request that reaches the store, so a test can show what a client sent there
(the redirect tests: the API key must not reach the store's origin).

Credentials are fixed test values (`AWS_ENV`), set on each client here; a test that builds the
server's own client through boto3's chain sets them in the environment with monkeypatch (and
`AWS_EC2_METADATA_DISABLED`, so that no lookup ever leaves loopback).
"""

from __future__ import annotations

import http.client
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import free_port

REPO = Path(__file__).resolve().parents[2]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class S3Server:
    url: str
    proc: subprocess.Popen

    def client(self, endpoint: str | None = None) -> Any:  # a boto3 S3 client
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.url,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"cinegen-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def keys(self, bucket: str) -> list[str]:
        answer = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in answer.get("Contents", []))


def start_moto(root: Path) -> S3Server:
    """moto_server on a free loopback port, its log in `root`; `stop()` it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "moto.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [str(REPO / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    log.close()
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (root / "moto.log").read_text()
        try:
            if httpx.get(f"{url}/moto-api/", timeout=1, trust_env=False).status_code < 500:
                return S3Server(url, proc)
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "moto_server did not start"
        time.sleep(0.1)


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
