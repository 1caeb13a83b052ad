"""A stored file as an HTTP response: streamed from the service's stream, with HTTP Range.

The blob store gives a seekable stream rather than a path, so this does what starlette's
FileResponse does for a path: one `bytes=` range is answered 206 with `Content-Range`, a range
past the end 416 (in the Google envelope, with `Content-Range: bytes */size`), anything else
(no range, several ranges, a malformed one) the whole file with 200. A HEAD request gets the
same status and headers with no body.

With `CINEGEN_BLOB_REDIRECT=true` and a store that presigns (S3), a GET is answered 307 to a
short-lived URL on the store's origin instead, so the bytes do not pass through this server.
Not for a request whose API key is in `x-goog-api-key`: the google-genai SDKs (and any client
that sets a custom header) send it again to the redirect's target, another origin
(spec/google-genai-sdk-wire.md, "x-goog-api-key follows redirects"), so that download is
streamed. A key in `?key=` stays behind (the Location is a new URL), and clients drop
`Authorization` on a cross-origin redirect (httpx, requests, curl, fetch), so those redirect.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from cinegen.api.errors import envelope
from cinegen.service.files import OpenedFile

CHUNK_BYTES = 1 << 20
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
# A position past any file: longer numbers are read as this rather than parsed (Python refuses
# to parse an int of over 4 300 digits, and a 5 000-digit Range once answered 500).
_HUGE = 1 << 62


# Credential headers a client re-sends to a redirect's target on another origin.
FOLLOWING_CREDENTIALS = ("x-goog-api-key",)


def _chunks(stream: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        stream.seek(start)
        limit = getattr(stream, "limit", None)
        if callable(limit):  # a remote stream: read ahead no further than the range
            limit(start + length)
        while length > 0:
            chunk = stream.read(min(CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        stream.close()


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _HUGE


def without_body(response: Response) -> Response:
    """The answer to a HEAD: `response`'s status and headers (Content-Length included), no
    body; a streamed body is closed unread."""
    if isinstance(response, StreamingResponse):
        close = getattr(response.body_iterator, "close", None)
        if close is not None:
            close()
    return Response(status_code=response.status_code, headers=dict(response.headers))


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
        count = _position(last)
        if not count or not size:
            raise Unsatisfiable()
        return max(size - count, 0), size - 1
    start = _position(first)
    if start >= size:
        raise Unsatisfiable()
    end = min(_position(last), size - 1) if last else size - 1
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
        return without_body(response) if request.method == "HEAD" else response
    if (location := _redirect(request, opened, media_type, filename)) is not None:
        opened.stream.close()
        return location
    status, first, last = (200, 0, size - 1) if wanted is None else (206, *wanted)
    if wanted is not None:
        headers["content-range"] = f"bytes {first}-{last}/{size}"
    headers["content-length"] = str(last - first + 1)
    if request.method == "HEAD":
        opened.stream.close()
        return Response(status_code=status, media_type=media_type, headers=headers)
    return StreamingResponse(
        _chunks(opened.stream, first, last - first + 1),
        status_code=status,
        media_type=media_type,
        headers=headers,
    )


def may_redirect(request: Request) -> bool:
    """A GET whose credentials would not follow a redirect to another origin."""
    if request.method != "GET":
        return False
    return not any(request.headers.get(name) for name in FOLLOWING_CREDENTIALS)


def _redirect(
    request: Request, opened: OpenedFile, media_type: str, filename: str
) -> Response | None:
    """307 to the store's presigned URL, where allowed and the store makes one."""
    if opened.presign is None or not may_redirect(request):
        return None
    url = opened.presign(filename, media_type)
    if url is None:
        return None
    headers = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
    return RedirectResponse(url, status_code=307, headers=headers)
