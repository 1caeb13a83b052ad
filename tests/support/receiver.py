"""A webhook receiver on loopback for the delivery tests: records every request, answers
with scripted statuses (or a redirect), and counts the connections it accepted."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    arrived: float  # time.time()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: Receiver) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def get_request(self) -> Any:
        request = super().get_request()
        with self.owner.lock:
            self.owner.connections += 1
        return request


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        item = Received(
            self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
        )
        status, location = owner.next_answer()
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with owner.lock:
            owner.requests.append(item)
            owner.arrived.notify_all()

    def log_message(self, *_args: Any) -> None:
        pass


class Receiver:
    """`statuses` are answered in turn, then `default`; `redirect_to` makes every answer a
    302 to that URL."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        statuses: list[int] | None = None,
        default: int = 200,
        redirect_to: str | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.requests: list[Received] = []
        self.connections = 0
        self.statuses = deque(statuses or [])
        self.default = default
        self.redirect_to = redirect_to
        self.server = _Server((host, port), self)
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def next_answer(self) -> tuple[int, str | None]:
        if self.redirect_to:
            return 302, self.redirect_to
        with self.lock:
            return (self.statuses.popleft() if self.statuses else self.default), None

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, waiting up to `timeout` s for them."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} of {count} deliveries arrived")
                self.arrived.wait(left)
            return list(self.requests[:count])
