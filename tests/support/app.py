"""cinegen in this process: `create_app(Settings(...))` behind an httpx client, no socket.

`in_process(data_dir, **settings)` builds the app, runs its lifespan (start-up sweep, the
queue's recovery and worker threads, the retention sweeper) on an event loop in a thread of its
own, and yields an `InProcessServer`. Its `client()` is a plain `httpx.Client` whose transport
hands each request to `httpx.ASGITransport`, so the helpers written for a real server
(tests/helpers.py: create, wait_done, ...) work unchanged, at the cost of no subprocess.

With `workers=0` no thread runs jobs: an operation stays queued until the test calls
`server.run(op_id)` (jobs/worker.py's `run_job`), which makes job tests deterministic.
`engines={"preview": engine}` puts a test's engine in place of the built ones before start-up.

The few lines that reach into the runtime (where it keeps the JobContext, how a key is
stored) are the methods below, so a change of those is one fix here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

from cinegen.app import create_app
from cinegen.settings import Settings

BASE_URL = "http://testserver"


class _PortalASGITransport(httpx.BaseTransport):
    """A synchronous transport over `httpx.ASGITransport`: each request is awaited on the
    portal's event loop (the loop the lifespan ran on), its body read whole."""

    def __init__(self, app: FastAPI, portal: BlockingPortal) -> None:
        # As over a socket: an exception in the app reaches the client as the app's 500.
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, httpx.Headers, bytes]:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._asgi.handle_async_request(forwarded)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = self._portal.call(send)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))


@dataclass
class InProcessServer:
    settings: Settings
    app: FastAPI
    portal: BlockingPortal

    @property
    def url(self) -> str:
        return BASE_URL

    @property
    def runtime(self) -> Any:  # cinegen.api.runtime.Runtime
        return self.app.state.runtime

    @property
    def db(self) -> Any:  # cinegen.store.db.Database
        return self.runtime.db

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 60)
        return httpx.Client(
            transport=_PortalASGITransport(self.app, self.portal), base_url=BASE_URL, **kwargs
        )

    def run(self, op_id: str) -> None:
        """Run one job here, in the test's thread, as a worker thread would."""
        from cinegen.jobs.worker import run_job

        run_job(op_id, job_context(self.app))

    def add_key(self, name: str = "test") -> str:
        """A new API key, stored as `cinegen keys create` stores it; returns the key."""
        from cinegen.api.auth import create_key

        return create_key(self.db, name)[1]


def job_context(app: FastAPI) -> Any:  # cinegen.jobs.worker.JobContext
    return app.state.runtime.jobs


def install_engines(app: FastAPI, engines: Mapping[str, Any]) -> None:
    """Replace engines by name ("preview", "diffusers") in the app's job context."""
    job_context(app).engines.update(engines)


def op_id(name: str) -> str:
    """The id at the end of an operation name (`models/m/operations/<id>` and the like)."""
    return name.rsplit("/", 1)[-1]


def settings_for(data_dir: Path, **values: Any) -> Settings:
    """Settings from the arguments only: no `.env` file is read (the environment's CINEGEN_
    variables still are, as by a server, but arguments win)."""
    return Settings(_env_file=None, data_dir=data_dir, **values)


@contextmanager
def in_process(
    data_dir: Path, *, engines: Mapping[str, Any] | None = None, **settings: Any
) -> Iterator[InProcessServer]:
    """The app on `data_dir`, started (lifespan entered) until the block ends."""
    config = settings_for(data_dir, **settings)
    app = create_app(config)
    if engines:
        install_engines(app, engines)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        yield InProcessServer(config, app, portal)
