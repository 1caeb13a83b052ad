"""The request id and the request's span, around the whole app.

Every response carries `X-Request-Id` (the client's when it is valid, else a new one), every
log line written while the request runs carries the id, and one access line per request says
what it was (route template, status, milliseconds; never the query string, where keys go).

It wraps the app's whole middleware stack (`install`), outside Starlette's error middleware,
so that the 500s that middleware answers get the header and the line too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cinegen.core import logs, tracing

log = logging.getLogger("cinegen.access")

HEADER = b"x-request-id"


class RequestContext:
    """Pure ASGI: no body buffering, one context variable, one header."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, HEADER)
        request_id = logs.request_id_or_new(given.decode("latin-1") if given else None)
        token = logs.bind(request_id=request_id)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
            await send(message)

        try:
            with tracing.server_span(scope["method"], _headers(scope), _attributes(scope)) as span:
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    if span is not None:
                        _finish_span(span, scope, status)
        finally:
            if self.access_log:
                _access_line(scope, status, time.perf_counter() - start)
            logs.unbind(token)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


def _headers(scope: Scope) -> dict[str, str]:
    """The W3C trace context headers only: nothing else is read from them."""
    out = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        if name in ("traceparent", "tracestate"):
            out[name] = value.decode("latin-1")
    return out


def _route(scope: Scope) -> str | None:
    """The matched route's template (`/v1beta/models/{model}:predictLongRunning`)."""
    route = scope.get("route")
    return getattr(route, "path", None)


def _attributes(scope: Scope) -> dict[str, Any]:
    return {"http.request.method": scope["method"], "url.path": scope["path"]}


def _finish_span(span: Any, scope: Scope, status: int) -> None:
    route = _route(scope)
    if route is not None:
        span.update_name(f"{scope['method']} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        from opentelemetry.trace import StatusCode

        span.set_status(StatusCode.ERROR)


def _access_line(scope: Scope, status: int, seconds: float) -> None:
    log.info(
        "%s %s %s %.1f ms",
        scope["method"],
        scope["path"],
        status,
        seconds * 1000,
        extra={
            "http": {
                "method": scope["method"],
                "path": scope["path"],
                "route": _route(scope),
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            }
        },
    )


def install(app: Any, *, access_log: bool = True) -> None:
    """Wraps `app`'s middleware stack (built on its first request) in `RequestContext`."""
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return RequestContext(build(), access_log=access_log)

    app.build_middleware_stack = build_wrapped
