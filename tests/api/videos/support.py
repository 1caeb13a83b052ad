"""What the /v1/videos tests share: a loopback image server and a cinegen server for them.

`ImageServer` is a small threaded HTTP server on a loopback address that serves test images
and the awkward answers the URL fetcher must refuse (redirects, huge or slow bodies, HTML),
and records the Host header of every request. `videos_server` starts `cinegen serve` with
127.0.0.1 allow-listed for image URLs, so tests can hand it the image server's URLs.
"""

from __future__ import annotations

import base64
import io
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
from PIL import Image

from tests.support.server import ServerProcess

BIG = 21 * 1024 * 1024  # over the 20 MB cap
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image_bytes(
    color: tuple[int, int, int], size: tuple[int, int] = (320, 180), fmt: str = "PNG"
) -> bytes:
    """A flat image with a white square in the top-left quarter, so frames can be compared."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = color
    pixels[height // 8 : height // 2, width // 8 : width // 3] = 255
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


RED_PNG = image_bytes((200, 40, 40))
BLUE_PNG = image_bytes((30, 60, 200))
GREEN_JPEG = image_bytes((40, 170, 60), fmt="JPEG")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: bytes, content_type: str, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        routes = {
            "/red.png": lambda: self._send(200, RED_PNG, "image/png"),
            "/blue.png": lambda: self._send(200, BLUE_PNG, "image/png"),
            "/green.jpg": lambda: self._send(200, GREEN_JPEG, "image/jpeg"),
            "/page.html": lambda: self._send(200, b"<html><body>hi</body></html>", "text/html"),
            "/redirect": lambda: self._redirect(query["to"][0]),
            "/loop": lambda: self._redirect("/loop"),
            "/big": self._big,
            "/big-chunked": self._big_chunked,
            "/slow": self._slow,
            "/drip-headers": self._drip_headers,
        }
        handler = routes.get(parts.path)
        if handler is None:
            self._send(404, b"not found", "text/plain")
            return
        try:
            handler()
        except (BrokenPipeError, ConnectionResetError):
            self.server.aborted.append(parts.path)

    def _redirect(self, target: str) -> None:
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _big(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(BIG))
        self.end_headers()
        self._stream(BIG)

    def _big_chunked(self) -> None:
        """No Content-Length: the cap must hold while streaming."""
        self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        chunk = PNG_MAGIC + bytes(256 * 1024 - len(PNG_MAGIC))
        while sent < BIG:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            self.server.streamed = sent
        self.wfile.write(b"0\r\n\r\n")

    def _stream(self, total: int) -> None:
        chunk = PNG_MAGIC + bytes(256 * 1024 - len(PNG_MAGIC))
        sent = 0
        while sent < total:
            piece = chunk[: total - sent]
            self.wfile.write(piece)
            sent += len(piece)
            self.server.streamed = sent

    def _slow(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(RED_PNG)))
        self.end_headers()
        for byte in RED_PNG[:50]:  # trickle: every byte arrives before any read timeout
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.1)

    def _drip_headers(self) -> None:
        """A status line, then header bytes one at a time, each well inside any read
        timeout, for up to a minute (or until the server closes): no per-read timeout ever
        trips, only a deadline on the whole fetch ends it."""
        with self.server.lock:
            self.server.dripping += 1
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            self.wfile.flush()
            stop = time.monotonic() + 60
            while time.monotonic() < stop and not self.server.closing.is_set():
                self.wfile.write(b"a")  # one header line that never ends
                self.wfile.flush()
                self.server.closing.wait(0.2)
        finally:
            with self.server.lock:
                self.server.dripping -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, str]]
    aborted: list[str]
    streamed: int
    dripping: int  # handlers now drip-feeding headers
    closing: threading.Event
    lock: threading.Lock


class ImageServer:
    """A loopback HTTP server for image URLs; `url(path)` builds one."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.httpd = _Server((host, 0), _Handler)
        if tls is not None:  # HTTPS: every connection is wrapped as it is accepted
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.requests = []
        self.httpd.aborted = []
        self.httpd.streamed = 0
        self.httpd.dripping = 0
        self.httpd.closing = threading.Event()
        self.httpd.lock = threading.Lock()
        self.host = host
        self.tls = tls is not None
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}{path}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self.httpd.requests

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    @property
    def dripping(self) -> int:
        return self.httpd.dripping

    def __exit__(self, *_exc: object) -> None:
        self.httpd.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def videos_server(data_dir: Path, **env: str) -> Iterator[ServerProcess]:
    """`cinegen serve` for the /v1/videos tests: loopback image URLs allowed, fast polls."""
    settings = {
        "CINEGEN_WORKERS": "2",
        "CINEGEN_FETCH_ALLOW_HOSTS": "127.0.0.1",
        "CINEGEN_VIDEOS_POLL_AFTER_MS": "200",
        **env,
    }
    proc = ServerProcess(data_dir, env_extra=settings)
    proc.start(timeout=120)  # a loaded machine (the suite runs two at a time) starts slowly
    try:
        yield proc
    finally:
        proc.stop()


def wait_video(client: httpx.Client, video_id: str, timeout: float = 240.0) -> dict[str, Any]:
    """Poll GET /v1/videos/{id} until completed or failure; the final body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/v1/videos/{video_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in ("completed", "failure"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"video {video_id} not done after {timeout} s")


def operation_name(video_id: str) -> str:
    """The operation name a video id carries (base64url, no padding)."""
    return base64.urlsafe_b64decode(video_id + "=" * (-len(video_id) % 4)).decode()


class FlakyProxy:
    """A loopback proxy in front of cinegen that forwards every request, but answers the
    first `failures` creates (a `POST` to a path ending in `create_suffix`: `/v1/videos`, or
    `:predictLongRunning` for the other dialects) with a 503 *after* cinegen has handled them:
    the case where a client retries a create that did start a job."""

    def __init__(self, target: str, failures: int = 1, create_suffix: str = "/v1/videos") -> None:
        outer = self
        self.target = target
        self.failures = failures
        self.create_suffix = create_suffix  # a path ending so is a create (any dialect's)
        self.creates: list[dict[str, str]] = []  # the headers of every create seen

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                with httpx.Client(base_url=outer.target, timeout=60, trust_env=False) as http:
                    answer = http.request(self.command, self.path, content=body, headers=headers)
                path = self.path.split("?")[0]
                is_create = self.command == "POST" and path.endswith(outer.create_suffix)
                if is_create:
                    outer.creates.append(dict(self.headers.items()))
                if is_create and outer.failures > 0:
                    outer.failures -= 1
                    payload = (
                        b'{"error": {"code": 503, "message": "flaky", "status": "UNAVAILABLE"}}'
                    )
                    self._reply(503, payload, {"Content-Type": "application/json"})
                    return
                keep = ("content-type", "openai-poll-after-ms")
                self._reply(
                    answer.status_code,
                    answer.content,
                    {k: v for k, v in answer.headers.items() if k.lower() in keep},
                )

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _forward  # noqa: N815 - http.server's names

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
