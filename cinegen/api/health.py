"""`/healthz`, `/readyz` and `/metrics`, and the middleware that times every HTTP request.

None of them is under a dialect's prefix, and none needs an API key except `/metrics` under
`CINEGEN_METRICS=admin`. `/healthz` answers as long as the event loop does; `/readyz` asks the
database, the blob store, the worker threads and the diffusers warm-up (service/health.py);
`/metrics` is the Prometheus text format (core/metrics.py), guarded by the `metrics` setting:

- `loopback` (default): clients on this machine only, others get 403 (behind a reverse proxy
  on the same machine every client looks local: use `admin` or `off` there);
- `open`: anyone; `admin`: a caller with an admin API key; `off`: 404, and no request timing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cinegen.api.auth import is_loopback_host
from cinegen.api.openapi import AUTH, errors
from cinegen.api.runtime import Runtime, runtime
from cinegen.core import metrics
from cinegen.core.errors import NotFound, PermissionDenied
from cinegen.service import health
from cinegen.store.db import utcnow

log = logging.getLogger("cinegen.health")
router = APIRouter()
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404)
TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", responses=errors(503))
def readyz(request: Request) -> JSONResponse:
    rt = runtime(request)
    warmup = getattr(request.app.state, "warmup", None)
    result = health.readiness(rt.db, rt.service.files, rt.settings, warmup)
    if result.ready:
        return JSONResponse({"status": "ok", "checks": result.checks})
    failing = ", ".join(result.failing())
    error = {"code": 503, "message": f"Not ready: {failing}.", "status": "UNAVAILABLE"}
    body = {"error": error, "status": "unavailable", "checks": result.checks}
    return JSONResponse(body, status_code=503)


def check_metrics_access(rt: Runtime, request: Request) -> None:
    """Raise unless the `metrics` setting lets this caller read `/metrics`. A scrape with an
    admin key is not counted against the key's per-minute limit."""
    mode = rt.settings.metrics
    if mode == "off":
        raise NotFound("Method not found.")
    if mode == "loopback":
        client = request.client.host if request.client else ""
        if not is_loopback_host(client):
            raise PermissionDenied(
                "Metrics are served to clients on the server's own machine only "
                "(CINEGEN_METRICS=loopback). Scrape from there, or set CINEGEN_METRICS to "
                "admin (an API key) or open."
            )
    elif mode == "admin":
        key = rt.auth.key(request)  # 401 without a key; 403 for a wrong or expired one
        if key is None or not key.admin:
            raise PermissionDenied(
                "Metrics need an admin API key (CINEGEN_METRICS=admin). Create one with "
                "`cinegen keys create --admin`."
            )


@router.get("/metrics", responses={200: TEXT, **errors(*AUTH, 404)}, response_class=Response)
def prometheus_metrics(request: Request) -> Response:
    rt = runtime(request)
    check_metrics_access(rt, request)

    def from_database() -> Iterable[Metric]:
        try:
            rows = health.queue_rows(rt.db)
        except Exception:  # the rest of the metrics still tell what is going on
            log.warning("metrics: reading the queue from the database failed", exc_info=True)
            return []
        models = [row.id for row in rt.catalog.rows()]
        return metrics.database_families(rows, models, utcnow())

    return Response(metrics.exposition(from_database), media_type=metrics.CONTENT_TYPE)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (`/v1beta/operations/{name}`), never the
    raw path: one series per route, whatever ids the clients send."""
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


class HttpMetrics:
    """Pure ASGI (no BaseHTTPMiddleware: its task and queue per request cost more than the
    poll route itself): the status from the response start, the route from the scope the
    router filled in, the time until the app returned (the last byte sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises past every handler

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            metrics.observe_request(
                route_template(scope), scope["method"], status, time.perf_counter() - started
            )


def install_health(app: FastAPI, rt: Runtime) -> None:
    """The three routes, and the request timing unless metrics are off."""
    app.include_router(router)
    if rt.settings.metrics != "off":
        app.add_middleware(HttpMetrics)
