"""Reading JSON bodies and checking them against wire models, in Google's words.

Every dialect reads its bodies here, so a body over the limit, malformed JSON or a field of
the wrong type gets the same envelope and wording whichever route it came to.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from cinegen.core.errors import InvalidArgument, PayloadTooLarge


async def read_json(request: Request, limit: int) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"Request payload size exceeds the limit: {limit} bytes.")
    raw = await request.body()
    if len(raw) > limit:
        raise PayloadTooLarge(f"Request payload size exceeds the limit: {limit} bytes.")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            f"Invalid JSON payload received. {exc.__class__.__name__}: {exc}"
        ) from exc


Body = TypeVar("Body", bound=BaseModel)


def parse_body(schema: type[Body], payload: Any) -> Body:
    """`payload` as a `schema`, or a 400 with Google's wording for the first field at fault."""
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        raise InvalidArgument(validation_message(exc)) from exc


def validation_message(exc: ValidationError) -> str:
    """Google's style: `Invalid value at 'instances[0].prompt' (TYPE_STRING), 5`."""
    error = exc.errors()[0]
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if error["type"] == "missing":
        return f"Invalid JSON payload received. Missing required field '{path}'."
    if error["type"] == "too_short":
        return f"Invalid JSON payload received. '{path}' must not be empty."
    expected = {
        "string_type": "TYPE_STRING",
        "dict_type": "TYPE_MESSAGE",
        "model_type": "TYPE_MESSAGE",
        "list_type": "TYPE_LIST",
    }.get(error["type"])
    given = json.dumps(error.get("input"))[:80]
    if expected:
        return f"Invalid value at '{path}' ({expected}), {given}"
    return f"Invalid value at '{path}': {error['msg']}"
