"""`Idempotency-Key` on every create route of every dialect, one implementation.

Clients retry a create whose answer they did not get (the Vercel AI SDK sends a key on every
Gemini and Vertex create and retries twice; the OpenAI SDK's retries keep their headers), and
without the key each retry would start one more job. The same key within 24 hours answers
the operation the first create started, in the dialect's own form; the same key with other
parameters is refused. The key's fingerprint covers the route, the model and the body, so a key
reused on another route (another dialect, API version or Vertex project) or for another model
counts as other parameters: the first answer cannot be replayed in another form. Keys live in
one table (`video_idempotency`) per API key, and `OperationService.submit_once` settles races
between threads and processes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request

from cinegen.api import openapi as doc
from cinegen.api.videos.wire import FilePart
from cinegen.core.errors import InvalidArgument
from cinegen.core.operation import Operation
from cinegen.service.operations import OperationService

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255  # the column's width, and what Stripe-style APIs allow
TTL_HOURS = 24.0

PARAMETER = doc.parameter(
    "header",
    HEADER,
    f"At most {MAX_KEY_CHARS} characters: the same key and body within 24 hours answer the "
    "operation the first request started; the same key with other parameters is a 400.",
    {"type": "string", "maxLength": MAX_KEY_CHARS},
)


def read_key(request: Request) -> str | None:
    """The request's key, None if it sent none (or only blanks)."""
    key = (request.headers.get(HEADER) or "").strip() or None
    if key is not None and len(key) > MAX_KEY_CHARS:
        raise InvalidArgument(f"Invalid value at '{HEADER}': at most {MAX_KEY_CHARS} characters.")
    return key


def fingerprint(route: str, model: str | None, body: Any) -> str:
    """What a replay must match: the route, the model and the body (an uploaded file by its
    bytes). Keys are sorted, so the same JSON in another key order is the same request."""

    def default(value: Any) -> str:
        if isinstance(value, FilePart):
            return "file:" + hashlib.sha256(value.data).hexdigest()
        return repr(value)

    text = json.dumps(
        {"route": route, "model": model, "body": body},
        sort_keys=True,
        default=default,
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def create_once(
    service: OperationService,
    owner: str | None,
    key: str | None,
    *,
    route: str,
    model: str | None,
    body: Any,
    submit: Callable[[], Operation],
) -> Operation:
    """`submit()`, or with a key the operation an earlier create with that key started."""
    if key is None:
        return submit()
    return service.submit_once(
        owner, key, fingerprint(route, model, body), submit, ttl_hours=TTL_HOURS
    )
