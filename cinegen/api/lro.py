"""The long-running operation JSON the Gemini and Vertex dialects share: `name`, `metadata`,
`done`, then `response` or `error`. Each dialect supplies its name, metadata and response."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cinegen.core.errors import RpcCode
from cinegen.core.operation import Operation, State


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as Google's JSON writes a Timestamp."""
    return moment.isoformat().replace("+00:00", "Z")


def render_lro(
    op: Operation,
    *,
    name: str,
    metadata: dict[str, Any],
    response: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`response()` is called only for a succeeded operation."""
    body: dict[str, Any] = {"name": name, "metadata": metadata, "done": op.done}
    if not op.done:
        return body
    if op.state == State.SUCCEEDED:
        body["response"] = response()
    else:
        body["error"] = {
            "code": op.error_code or RpcCode.UNKNOWN,
            "message": op.error_message or "Unknown error.",
        }
    return body
