"""A stored file as an HTTP response: streamed from the service's stream, with HTTP Range.

The blob store gives a seekable stream rather than a path, so this does what starlette's
FileResponse does for a path: one `bytes=` range is answered 206 with `Content-Range`, a range
past the end 416, anything else (no range, several ranges) the whole file with 200.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from cinegen.api.errors import envelope
from cinegen.service.files import OpenedFile

CHUNK_BYTES = 1 << 20
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def _chunks(stream: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        stream.seek(start)
        while length > 0:
            chunk = stream.read(min(CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        stream.close()


class Unsatisfiable(Exception):
    """The range starts past the end of the file (HTTP 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single range; None to send the whole file."""
    match = _RANGE.match(header or "")
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        count = int(last)
        if not count or not size:
            raise Unsatisfiable()
        return max(size - count, 0), size - 1
    start = int(first)
    if start >= size:
        raise Unsatisfiable()
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if end >= start else None


def file_response(
    request: Request, opened: OpenedFile, *, media_type: str, filename: str
) -> Response:
    size = opened.size
    headers = {
        "accept-ranges": "bytes",
        "content-disposition": f'inline; filename="{filename}"',
        "etag": f'"{opened.record.id}-{size}"',
    }
    try:
        wanted = byte_range(request.headers.get("range"), size)
    except Unsatisfiable:
        opened.stream.close()
        response = envelope(416, f"Requested range not satisfiable (the file has {size} bytes).")
        response.headers["content-range"] = f"bytes */{size}"
        return response
    if wanted is None:
        headers["content-length"] = str(size)
        return StreamingResponse(
            _chunks(opened.stream, 0, size), media_type=media_type, headers=headers
        )
    first, last = wanted
    headers["content-range"] = f"bytes {first}-{last}/{size}"
    headers["content-length"] = str(last - first + 1)
    return StreamingResponse(
        _chunks(opened.stream, first, last - first + 1),
        status_code=206,
        media_type=media_type,
        headers=headers,
    )
