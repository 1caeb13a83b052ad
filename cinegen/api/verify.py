"""`POST /v1beta/cinegen:verify`: what a video says of where it came from (a cinegen
extension, beside the Gemini API's paths; service/provenance.py reads the marks).

The body is the MP4 itself (`Content-Type: video/mp4` or any other), or a multipart form
whose `file` field is the MP4 (what a browser's form or the playground's drop zone sends).
Either is held to the server's body limit while it streams in.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from cinegen.api import openapi as doc
from cinegen.api.body import read_form, read_limited
from cinegen.api.runtime import runtime
from cinegen.core.errors import InvalidArgument
from cinegen.service.provenance import verify_video

router = APIRouter()

FIELD = "file"
NO_FILE = "The form has no `file` field with the video: send the MP4 as `file`."
_MP4 = {"type": "string", "format": "binary", "description": "The MP4 file."}
_REQUEST_BODY = {
    "required": True,
    "description": "The MP4 as the whole body, or as the `file` field of a multipart form.",
    "content": {
        "video/mp4": {"schema": _MP4},
        "application/octet-stream": {"schema": _MP4},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {FIELD: _MP4},
                "required": [FIELD],
            }
        },
    },
}
_REPORT = {
    "type": "object",
    "description": "The C2PA manifest (`c2pa`), the invisible watermark (`watermark`) and "
    "the MP4 tags (`tags`) of the video, and its digests.",
    "properties": {
        "sizeBytes": {"type": "integer"},
        "sha256": {"type": "string"},
        "contentSha256": {
            "type": "string",
            "description": "sha256 of the file without its C2PA box.",
        },
        "c2pa": {"type": "object"},
        "watermark": {"type": ["object", "null"]},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "aiGenerated": {"type": "boolean"},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["sizeBytes", "sha256", "contentSha256", "c2pa", "watermark", "tags"],
}


async def _video_bytes(request: Request, limit: int) -> bytes:
    """The MP4 from the body: raw, or a multipart form's `file` field."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        return await read_limited(request, limit)
    form = await read_form(
        request, limit, max_files=1, max_fields=16, max_part_size=64 * 1024, max_file_size=limit
    )
    try:
        upload = form.get(FIELD)
        if not isinstance(upload, UploadFile):
            raise InvalidArgument(NO_FILE)
        return await upload.read()
    finally:
        await form.close()


@router.post(
    "/v1beta/cinegen:verify",
    response_class=JSONResponse,
    responses={
        200: {"content": {"application/json": {"schema": _REPORT}}},
        **doc.errors(400, 413, *doc.AUTH),
    },
    openapi_extra=doc.extra([doc.API_KEY], _REQUEST_BODY),
)
async def verify(request: Request) -> JSONResponse:
    """Read a video's content credentials, watermark and tags, and say whether they hold."""
    rt = runtime(request)
    owner = rt.auth.owner(request)  # the server's keys apply, as to every route
    data = await _video_bytes(request, rt.settings.max_request_bytes)
    report: Any = await run_in_threadpool(
        partial(verify_video, rt.settings, data, rt.db, caller=owner)
    )
    return JSONResponse(report.to_json())
