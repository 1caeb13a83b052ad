"""The Google error envelope, and the handlers that make every failure answer in it.

`{"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT"}}` — for refusals by
the rules, bad input, unknown routes, and (without a trace) for bugs.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from cinegen.core.errors import STATUS_BY_HTTP, CinegenError, QuotaExceeded, Unavailable
from cinegen.store.blobs import STORAGE_FULL_MESSAGE, StorageFull, is_storage_full
from cinegen.store.db import is_unavailable

DATABASE_UNAVAILABLE = "The service is temporarily unavailable: its database cannot be reached."

log = logging.getLogger("cinegen.api")


def envelope(
    code: int, message: str, status: str | None = None, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    status = status or STATUS_BY_HTTP.get(code, "UNKNOWN")
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code)


async def _cinegen_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CinegenError)
    if exc.code >= 500 and not isinstance(exc, StorageFull) and is_storage_full(exc):
        return _storage_full()
    response = envelope(exc.code, exc.message, exc.status, exc.details())
    if isinstance(exc, QuotaExceeded):
        response.headers["retry-after"] = str(exc.retry_after)
    return response


def _storage_full() -> JSONResponse:
    """A full disk (a blob write, or the database's own) is 503 UNAVAILABLE, never a 500:
    it passes once space is freed, and deleting still works meanwhile."""
    return envelope(503, STORAGE_FULL_MESSAGE, "UNAVAILABLE")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path. Starlette's own 405 names only the
    methods of the first route whose path matched, so a path served by a GET and a DELETE
    route would list one; here the app's routes are asked once per method."""
    base = {
        "type": "http",
        "path": request.scope["path"],
        "root_path": request.scope.get("root_path", ""),
        "query_string": request.scope.get("query_string", b""),
        "headers": request.scope.get("headers", []),
    }
    allowed = []
    for method in _METHODS:
        scope = {**base, "method": method}
        if any(
            route.matches(scope)[0] is Match.FULL
            for route in request.app.router.routes
            if not isinstance(route, Mount)  # a mount matches every method
        ):
            allowed.append(method)
    return allowed


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return envelope(404, "Method not found.")
    if exc.status_code == 405:
        response = envelope(405, f"Method {request.method} not allowed for this resource.")
        allow = allowed_methods(request) or [
            m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()
        ]
        response.headers["allow"] = ", ".join(allow)
        return response
    return envelope(exc.status_code, str(exc.detail))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    return envelope(400, f"Invalid value at '{where}': {first.get('msg', 'invalid value')}")


def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is down, restarting or cut off: 503 UNAVAILABLE (the typed
    `Unavailable`), as a retry may pass; the pool reconnects once it is back."""
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    error = Unavailable(DATABASE_UNAVAILABLE)
    return envelope(error.code, error.message, error.status)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_unavailable(exc) and not is_storage_full(exc):
        return _database_unavailable(request, exc)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_storage_full(exc):
        log.error("storage full on %s %s: %s", request.method, request.url.path, exc)
        return _storage_full()
    if is_unavailable(exc):  # raised outside a route (a middleware)
        return _database_unavailable(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return envelope(500, "Internal error encountered.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CinegenError, _cinegen_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
