"""Reading JSON bodies and checking them against wire models, in Google's words.

Every dialect reads its bodies here, so a body over the limit, malformed JSON or a field of
the wrong type gets the same envelope and wording whichever route it came to.

The limit holds while the body streams in (a chunked body has no `Content-Length` to trust):
reading stops at the first chunk past it. What a parser returns is checked before any of it
is used: no string that UTF-8 cannot carry (a lone surrogate such as `"\\ud800"` is valid
JSON, and would break every later render of what it was stored in), no nesting deeper than
Google's parsers take, no integer Python will not convert.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from cinegen.core.errors import InvalidArgument, PayloadTooLarge, UnknownField

# Google's JSON parser refuses nesting deeper than this; no Veo body needs a tenth of it.
MAX_DEPTH = 100
INVALID_UTF8 = "Invalid JSON payload received. Invalid UTF-8 in string."
TOO_DEEP = f"Invalid JSON payload received. Nesting deeper than {MAX_DEPTH} levels."


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request payload size exceeds the limit: {limit} bytes.")


async def limited_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The body's chunks as they arrive; 413 as soon as more than `limit` bytes came."""
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and (len(length) > 18 or int(length) > limit):
        raise too_large(limit)
    received = 0
    async with aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            yield chunk


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (never more is held)."""
    async with aclosing(limited_stream(request, limit)) as stream:
        return b"".join([chunk async for chunk in stream])


async def read_json(request: Request, limit: int) -> Any:
    raw = await read_limited(request, limit)
    return loads(raw)


def loads(raw: bytes | str) -> Any:
    """JSON text as Python values, or a 400 in Google's words (never a 500)."""
    try:
        payload = json.loads(raw)
    except RecursionError as exc:
        raise InvalidArgument(TOO_DEEP) from exc
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"Invalid JSON payload received. {exc.__class__.__name__}: {exc}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidArgument(INVALID_UTF8) from exc
    except ValueError as exc:  # an integer past Python's 4300-digit conversion limit
        raise InvalidArgument(
            "Invalid JSON payload received. A number has too many digits."
        ) from exc
    check_values(payload)
    return payload


def check_values(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """400 for a string (or key) UTF-8 cannot encode, or nesting deeper than `max_depth`.

    Walks without recursion, so the check itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, dict | list | tuple):
            if depth >= max_depth:
                raise InvalidArgument(TOO_DEEP)
            if isinstance(node, dict):
                for key, child in node.items():
                    if isinstance(key, str):
                        _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in node)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(INVALID_UTF8) from exc


async def read_form(
    request: Request,
    limit: int,
    *,
    max_files: int,
    max_fields: int,
    max_part_size: int,
    max_file_size: int,
) -> FormData:
    """A multipart or urlencoded body, parsed while it streams in.

    The whole body is held to `limit` as it arrives, a text part to `max_part_size`, an
    uploaded file to `max_file_size` as it is written (413 past any); malformed data is 400."""
    content_type = request.headers.get("content-type", "").lower()
    stream = limited_stream(request, limit)
    try:
        if content_type.startswith("multipart/form-data"):
            parser: FormParser | MultiPartParser = _CappedMultiPartParser(
                request.headers,
                stream,
                max_files=max_files,
                max_fields=max_fields,
                max_part_size=max_part_size,
                max_file_size=max_file_size,
            )
        else:
            parser = FormParser(
                request.headers, stream, max_fields=max_fields, max_part_size=max_part_size
            )
        return await parser.parse()
    except _FileTooLarge as exc:
        raise PayloadTooLarge(
            f"Request payload size exceeds the limit: an uploaded file over {max_file_size} bytes."
        ) from exc
    except MultiPartException as exc:
        if exc.message.startswith(("Part exceeded", "Field exceeded")):
            raise PayloadTooLarge(
                f"Request payload size exceeds the limit: a form field over {max_part_size} bytes."
            ) from exc
        raise InvalidArgument(f"Invalid form data received. {exc.message}") from exc
    finally:
        await stream.aclose()


class _FileTooLarge(MultiPartException):
    pass


class _CappedMultiPartParser(MultiPartParser):
    """starlette's parser caps text parts only; this one caps file parts as they stream."""

    def __init__(self, *args: Any, max_file_size: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_file_size = max_file_size
        self._file_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_size:
                raise _FileTooLarge(f"File exceeded maximum size of {self.max_file_size} bytes.")
        super().on_part_data(data, start, end)


Body = TypeVar("Body", bound=BaseModel)


def parse_body(schema: type[Body], payload: Any) -> Body:
    """`payload` as a `schema`, or a 400 with Google's wording: every unknown field if any
    (the wire models forbid extras, as Google's parser does), else the first field at fault."""
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        unknown = unknown_fields(exc)
        if unknown:
            raise UnknownField(unknown) from exc
        raise InvalidArgument(validation_message(exc)) from exc


def unknown_fields(exc: ValidationError) -> list[tuple[str, str]]:
    """(path, sentence) for each field a model does not have, in Google's protobuf wording:
    `Invalid JSON payload received. Unknown name "video" at 'parameters': Cannot find field.`
    The name is as sent; the path names the message that lacks it by its proto field names
    (`instances[0].reference_images[0].image`), and is left out at the top level."""
    found = []
    for error in exc.errors():
        if error["type"] != "extra_forbidden":
            continue
        *where, name = error["loc"]
        path = _path(where, proto=True)
        at = f" at '{path}'" if path else ""
        found.append(
            (path, f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')
        )
    return found


def _path(loc: Sequence[int | str], *, proto: bool = False) -> str:
    """`instances[0].prompt` from pydantic's location; with `proto`, lowerCamel names become
    the proto field names Google's parser reports (`referenceImages` → `reference_images`)."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        name = _CAMEL_HUMP.sub(r"_\1", part).lower() if proto else part
        path += f".{name}" if path else name
    return path


_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def validation_message(exc: ValidationError) -> str:
    """Google's style: `Invalid value at 'instances[0].prompt' (TYPE_STRING), 5`."""
    error = exc.errors()[0]
    path = _path(error["loc"])
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
    given = json.dumps(error.get("input"), default=lambda v: f"<{type(v).__name__}>")[:80]
    if expected:
        return f"Invalid value at '{path}' ({expected}), {given}"
    return f"Invalid value at '{path}': {error['msg']}"
