"""Logs an operator can search: one JSON object a line (or readable text on a terminal), each
line carrying the request id and the operation id it belongs to, never a key or a payload.

The ids live in a context variable holding a small mutable `LogContext`: the HTTP middleware
sets one per request, the service adds the operation id when it creates or reads one, and the
worker sets one per job. The object is shared, not copied: a route running on a thread-pool
thread (which gets a copy of the context) fills in the operation id, and the middleware's own
access line, written afterwards, sees it.

Redaction is a filter on the root handler, so every record that reaches it is cleaned, the
ones of uvicorn and other libraries included: API keys (`x-goog-api-key`, `key=`, Bearer
tokens, cinegen's `cg-` keys) and long base64 runs (inline images and videos).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Literal

LogFormat = Literal["auto", "text", "json"]

MAX_REQUEST_ID = 128
REDACTED = "[REDACTED]"


@dataclass
class LogContext:
    """What the lines of one request or one job share."""

    request_id: str | None = None
    operation_id: str | None = None


_context: ContextVar[LogContext | None] = ContextVar("cinegen_log_context", default=None)
# Set by the tracing module while tracing is on: (trace id, span id) of the current span.
trace_ids: Callable[[], tuple[str, str] | None] | None = None


def current() -> LogContext | None:
    return _context.get()


def bind(request_id: str | None = None, operation_id: str | None = None) -> Token[Any]:
    """A new context for a request or a job; give the token to `unbind` when it ends."""
    return _context.set(LogContext(request_id=request_id, operation_id=operation_id))


def unbind(token: Token[Any]) -> None:
    _context.reset(token)


def bind_operation(operation_id: str) -> None:
    """Names the operation the current request or job works on (no-op outside of one)."""
    ctx = _context.get()
    if ctx is not None:
        ctx.operation_id = operation_id


def request_id_or_new(given: str | None) -> str:
    """The client's `X-Request-Id` when it is printable ASCII and at most 128 characters
    (it goes into log lines and a response header as is); otherwise a new one."""
    printable = given is not None and all(" " <= c <= "~" for c in given)
    if given and printable and given.strip() and len(given) <= MAX_REQUEST_ID:
        return given
    return uuid.uuid4().hex


# redaction --------------------------------------------------------------------------------

_SECRETS = re.compile(
    r"(?i)(x-goog-api-key['\"]?\s*[:=,]\s*[(b]?['\"]?)([^'\"\s,)]+)"  # header, in any shape
    r"|(\b(?:api_?key|key|access_token|token)=)([^&\s'\"]+)"  # query parameters
    r"|(\bbearer\s+)([^\s'\",)]+)"  # Authorization
)
_CINEGEN_KEY = re.compile(r"\bcg-[A-Za-z0-9_-]{16,}")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{100,}={0,2}")


def _secret(match: re.Match[str]) -> str:
    prefix = match.group(1) or match.group(3) or match.group(5)
    return f"{prefix}{REDACTED}"


def _base64(match: re.Match[str]) -> str:
    """A long run of the base64 alphabet that looks random (mixed case and digits, few
    slashes: a path has one every few characters) is a payload; ids and paths are kept."""
    run = match.group(0)
    if run.count("/") * 16 > len(run):
        return run
    if not (any(c.isupper() for c in run) and any(c.islower() for c in run)):
        return run
    if not any(c.isdigit() for c in run):
        return run
    return f"[base64, {len(run)} characters]"


_HINTS = ("key", "bearer", "token", "cg-")  # no secret without one of these words


def redact(text: str) -> str:
    """`text` without API keys or base64 payloads."""
    lowered = text.lower()
    if any(hint in lowered for hint in _HINTS):
        text = _SECRETS.sub(_secret, text)
        text = _CINEGEN_KEY.sub(REDACTED, text)
    if len(text) >= 100:
        text = _BASE64_RUN.sub(_base64, text)
    return text


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "operation_id",
    "trace_id",
    "span_id",
    "taskName",
}


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a call gave with `extra=`."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k[0] != "_"}


class RedactFilter(logging.Filter):
    """Cleans a record in place before any formatter sees it: its message with its
    arguments, its exception text and its `extra` strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._extras = fields = extras(record)  # the formatter's too: computed once
        for name, value in fields.items():
            if isinstance(value, str):
                fields[name] = redact(value)
                setattr(record, name, fields[name])
        return True


class ContextFilter(logging.Filter):
    """Stamps each record with the ids of the request or job it was logged in."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        record.request_id = ctx.request_id if ctx is not None else None
        record.operation_id = ctx.operation_id if ctx is not None else None
        ids = trace_ids() if trace_ids is not None else None
        record.trace_id, record.span_id = ids if ids is not None else (None, None)
        return True


# formats ----------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the ids, the
    `extra` fields, and the exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "operation_id", "trace_id", "span_id"):
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        fields = getattr(record, "_extras", None)
        line.update(fields if fields is not None else extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [req=… op=…]: message`, for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{short}={value}"
            for short, name in (("req", "request_id"), ("op", "operation_id"))
            if (value := getattr(record, name, None)) is not None
        ]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def resolve_format(fmt: LogFormat, stream: IO[str]) -> Literal["text", "json"]:
    """`auto`: text for a person at a terminal, JSON for everything else (a container, a
    service manager, a file), where a log collector reads it."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


class _Handler(logging.StreamHandler):
    """cinegen's root handler, told apart from others so `configure` can replace it."""


def configure(fmt: LogFormat = "auto", level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Installs the one root handler: every logger's records (uvicorn's too) pass its
    redaction and get the ids. Called again, it replaces the previous one."""
    stream = stream if stream is not None else sys.stderr
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(stream)
    handler.addFilter(RedactFilter())
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonFormatter() if resolve_format(fmt, stream) == "json" else TextFormatter()
    )
    root.addHandler(handler)
    root.setLevel(level.upper())
