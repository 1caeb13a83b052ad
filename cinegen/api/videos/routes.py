"""`/v1/videos`: the gateway format (seed 004) and the OpenAI Videos API's clients.

create (JSON or multipart), retrieve, list, delete, remix, and content (`variant` video,
thumbnail, spritesheet). A video's statuses are rendered in one of two sets of words: the
gateway's (`""`, `failure`) or OpenAI's (`queued`, `failed`), see `wants_openai`. A create
that is OpenAI-shaped (multipart, or `seconds` / `size` / `input_reference` without the
gateway's `images` / `metadata`) or comes from the OpenAI SDK is stored in the `openai`
dialect and keeps OpenAI's words on every later request, so a client such as LiteLLM's
`openai/` provider, which sends no SDK headers, gets the words its own clients understand.
Create and remix honour an `Idempotency-Key` header (cinegen/api/idempotency.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from cinegen.api import idempotency
from cinegen.api import openapi as doc
from cinegen.api.body import check_values, parse_body, read_form, read_json, validation_message
from cinegen.api.runtime import Runtime, runtime
from cinegen.api.streaming import file_response
from cinegen.core import rules
from cinegen.core.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from cinegen.core.operation import Operation
from cinegen.core.request import MediaRef
from cinegen.core.rules import RuleError
from cinegen.media.fetch import MAX_BYTES as MAX_UPLOAD_BYTES
from cinegen.media.fetch import FetchBusy, FetchError, FetchPolicy, shared_pool

from . import translate
from .wire import CreateVideoRequest, FilePart, RemixRequest, coerce_form_values, unflatten_form

log = logging.getLogger("cinegen.api.videos")
router = APIRouter()

PREFIX = "/v1/videos"
API_VERSION = "v1"
VARIANTS = ("video", "thumbnail", "spritesheet")
_UNSUPPORTED_ACTIONS = ("edits", "extensions", "characters")

# /openapi.json -------------------------------------------------------------------------
_COMPAT = [
    doc.parameter(
        "query",
        "compat",
        "`openai`: statuses in the OpenAI SDK's words (`queued`, `failed`); `gateway`: the "
        "gateway's (`\"\"`, `failure`). By default, the OpenAI SDK's own requests and videos "
        "created OpenAI-shaped get OpenAI's words (`CINEGEN_VIDEOS_DIALECT`).",
        {"type": "string", "enum": ["openai", "gateway"]},
    ),
    doc.parameter("header", "X-Video-Compat", "As `?compat=`.", {"type": "string"}),
    doc.API_KEY,
]
_VIDEO_ID = doc.parameter("path", "video_id", "The video's id (`video_...`).")
_FORM_FIELD = {"type": "string"}
_CREATE_FORM = {
    "type": "object",
    "description": "The OpenAI SDK's multipart body: the JSON fields as strings, "
    "`metadata` / `images` as JSON strings or bracket-named fields (`metadata[seed]`, "
    "`images[]`), `input_reference` an uploaded image.",
    "properties": {
        "model": _FORM_FIELD,
        "prompt": _FORM_FIELD,
        "seconds": _FORM_FIELD,
        "size": {"type": "string", "maxLength": 32},
        "metadata": _FORM_FIELD,
        "input_reference": {"type": "string", "format": "binary"},
    },
    "additionalProperties": _FORM_FIELD,
}
_REMIX_FORM = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "minLength": 1}},
    "required": ["prompt"],
}
_LIST = [
    doc.parameter(
        "query", "limit", "1 to 100 (20).", {"type": "integer", "minimum": 1, "maximum": 100}
    ),
    doc.parameter(
        "query", "order", "By creation time.", {"type": "string", "enum": ["asc", "desc"]}
    ),
    doc.parameter("query", "after", "The id of the last video of the previous page."),
]
_VARIANT = doc.parameter(
    "query", "variant", "Which file (`video`).", {"type": "string", "enum": list(VARIANTS)}
)
_CONTENT: dict[int | str, dict[str, Any]] = {
    200: doc.binary("video/mp4", "image/webp", "image/jpeg"),
    206: {"description": "The bytes of the `Range` asked for.", **doc.binary("video/mp4")},
}


# ------------------------------------------------------------------------------ helpers


def _asked(request: Request) -> bool | None:
    """What the request itself says: OpenAI's words (True), the gateway's (False), or
    nothing (None). `?compat=` / `X-Video-Compat` first, then the OpenAI SDK's headers."""
    compat = request.query_params.get("compat") or request.headers.get("x-video-compat")
    if compat:
        return compat.strip().lower() == "openai"
    if any(name.startswith("x-stainless-") for name in request.headers):
        return True
    if request.headers.get("user-agent", "").lower().startswith("openai/"):
        return True
    return None


def wants_openai(request: Request, rt: Runtime, op: Operation) -> bool:
    """The OpenAI words (`queued` / `failed`) or the gateway's (`""` / `failure`) for `op`:
    what the request asks, else the deployment's `videos_dialect`, else (`auto`) what the
    video's create was (`openai` dialect)."""
    asked = _asked(request)
    if asked is not None:
        return asked
    default = rt.settings.videos_dialect
    if default != "auto":
        return default == "openai"
    return op.dialect == translate.OPENAI_DIALECT


def _create_dialect(request: Request, raw: dict[str, Any]) -> str:
    """The dialect a new video is stored in: the request's own word, else its shape."""
    asked = _asked(request)
    if asked is None:
        asked = translate.openai_shaped(raw, multipart=_is_multipart(request))
    return translate.OPENAI_DIALECT if asked else translate.GATEWAY_DIALECT


def _poll_headers(rt: Runtime) -> dict[str, str]:
    return {"openai-poll-after-ms": str(rt.settings.videos_poll_after_ms)}


def _expires_at(rt: Runtime, op: Operation) -> datetime | None:
    return rt.service.files.first_expire_time(op.samples[0].file_id) if op.samples else None


def _render(request: Request, rt: Runtime, op: Operation) -> dict[str, Any]:
    openai = wants_openai(request, rt, op)
    return translate.render_video(op, openai=openai, expires_at=_expires_at(rt, op))


def _find(rt: Runtime, video_id: str, owner: str | None) -> Operation:
    op_id = translate.operation_id(video_id)
    try:
        if op_id is None:
            raise NotFound("")
        return rt.service.get(op_id, owner)
    except NotFound as exc:
        raise NotFound(f"Video {video_id} not found.") from exc


async def _read_body(request: Request, limit: int) -> dict[str, Any]:
    """JSON, or multipart / urlencoded fields rebuilt into the same JSON.

    Either is held to `limit` while it streams in (413 past it, whatever `Content-Length`
    says or omits), an uploaded file to the 20 MB Veo takes for an image (as for an image
    URL), and no string in the result may be one UTF-8 cannot carry."""
    if _content_type(request).startswith(
        ("multipart/form-data", "application/x-www-form-urlencoded")
    ):
        form = await read_form(
            request,
            limit,
            max_files=16,
            max_fields=1000,
            max_part_size=limit,
            max_file_size=min(limit, MAX_UPLOAD_BYTES),
        )
        try:
            items: list[tuple[str, Any]] = []
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    check_values([value.content_type, value.filename])
                    items.append((key, FilePart(data, value.content_type, value.filename)))
                else:
                    items.append((key, value))
        finally:
            await form.close()
        check_values(items)
        body = coerce_form_values(unflatten_form(items))
        check_values(body)
        return body
    payload = await read_json(request, limit)
    if not isinstance(payload, dict):
        raise InvalidArgument("Invalid JSON payload received. The body must be a JSON object.")
    return payload


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").lower()


def _is_multipart(request: Request) -> bool:
    return _content_type(request).startswith("multipart/form-data")


def _safe_url(url: str) -> str:
    """The URL for the log: no credentials, no query (signed URLs carry secrets there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    except ValueError:
        return "(malformed URL)"


# ------------------------------------------------------------------------------- create


def _fetch_all(rt: Runtime, draft: translate.Draft) -> dict[str, MediaRef]:
    """Every image URL, fetched at once on the fetch pool's own threads, each under one
    deadline; a full pool is a 503 at once (slow image servers must not hold the server)."""
    if not draft.urls:
        return {}
    settings = rt.settings
    policy = FetchPolicy.from_allow_list(
        settings.fetch_allow_hosts.split(","), timeout=settings.fetch_timeout_seconds
    )
    pool = shared_pool(settings.fetch_workers, settings.fetch_queue)
    futures = []
    try:
        for pending in draft.urls:
            futures.append((pending, pool.submit(pending.url, policy)))
    except FetchBusy as exc:
        for _pending, future in futures:
            future.cancel()
        log.warning("image download refused: %s", exc.reason)
        raise Unavailable(
            "Too many image downloads are in progress on this server; try again shortly."
        ) from exc
    fetched: dict[str, MediaRef] = {}
    for pending, future in futures:
        try:
            image = pool.result(future, policy)
        except FetchError as exc:
            log.warning("failed to download image %s: %s", _safe_url(pending.url), exc.reason)
            for _pending, other in futures:
                other.cancel()
            raise RuleError(translate.FAILED_TO_DOWNLOAD) from exc
        fetched[pending.slot] = MediaRef(
            data=image.data, mime_type=pending.mime_type or image.mime_type
        )
    return fetched


def _submit(rt: Runtime, owner: str | None, raw: dict[str, Any], dialect: str) -> Operation:
    """Validate, judge by the rules before any download, fetch the URLs, submit."""
    try:
        body = CreateVideoRequest.model_validate(raw)
        draft = translate.to_draft(body, dialect=dialect)
        rules.check(
            draft.request,
            api_version=API_VERSION,
            restricted_region=rt.settings.restricted_region,
            catalog=rt.catalog,
        )
        req = translate.with_fetched(draft, _fetch_all(rt, draft))
        return rt.service.submit(req, owner=owner, api_version=API_VERSION)
    except ValidationError as exc:
        raise InvalidArgument(validation_message(exc)) from exc
    except RuleError as exc:
        raise translate.gateway_error(exc) from exc


@router.post(
    PREFIX,
    responses=doc.errors(400, *doc.AUTH, 413, 429, 503),
    openapi_extra=doc.extra(
        [idempotency.PARAMETER, *_COMPAT],
        doc.body(
            CreateVideoRequest,
            example={"model": "veo-3.1-generate-preview", "prompt": doc.PROMPT, "seconds": "8"},
            form=_CREATE_FORM,
        ),
    ),
)
async def create_video(request: Request) -> JSONResponse:
    rt = runtime(request)
    owner = rt.auth.owner(request)
    raw = await _read_body(request, rt.settings.max_request_bytes)
    key = idempotency.read_key(request)
    dialect = _create_dialect(request, raw)
    op = await run_in_threadpool(
        idempotency.create_once,
        rt.service,
        owner,
        key,
        route=f"POST {PREFIX}",
        model=None,  # in the body
        body=raw,
        submit=lambda: _submit(rt, owner, raw, dialect),
    )
    return JSONResponse(_render(request, rt, op), headers=_poll_headers(rt))


@router.post(
    PREFIX + "/{action}",
    description="`edits`, `extensions` and `characters` are OpenAI's; cinegen refuses them.",
    responses=doc.errors(400, *doc.AUTH, 404),
    openapi_extra=doc.extra([doc.API_KEY]),
)
async def unsupported_action(action: str, request: Request) -> JSONResponse:
    runtime(request).auth.owner(request)
    if action in _UNSUPPORTED_ACTIONS:
        raise InvalidArgument(
            f"`/v1/videos/{action}` isn't supported by cinegen. Use `/v1/videos/{{id}}/remix`, "
            "or the Gemini API (`instances[0].video`) to extend a video.",
        )
    raise NotFound("Method not found.")


# ------------------------------------------------------------------------------- read


@router.get(
    PREFIX,
    responses=doc.errors(400, *doc.AUTH),
    openapi_extra=doc.extra([*_LIST, *_COMPAT]),
)
async def list_videos(request: Request) -> JSONResponse:
    rt = runtime(request)
    owner = rt.auth.owner(request)
    params = request.query_params
    limit_text = params.get("limit") or "20"
    if not (limit_text.isascii() and limit_text.isdigit() and len(limit_text) <= 3) or not (
        1 <= int(limit_text) <= 100
    ):
        raise InvalidArgument(f"Invalid value at 'limit': {limit_text!r} (an integer 1 to 100).")
    order = (params.get("order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise InvalidArgument(f"Invalid value at 'order': {order!r} (asc or desc).")
    after = None
    if params.get("after"):
        try:
            after = _find(rt, params["after"], owner)
        except NotFound as exc:
            raise InvalidArgument(f"Invalid value at 'after': {exc.message}") from exc
    limit = int(limit_text)
    ops = rt.service.list_after(owner, limit=limit + 1, after=after, ascending=order == "asc")
    data = [_render(request, rt, op) for op in ops[:limit]]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(ops) > limit,
        }
    )


@router.get(
    PREFIX + "/{video_id}",
    responses=doc.errors(*doc.AUTH, 404),
    openapi_extra=doc.extra(_COMPAT),
)
async def retrieve_video(video_id: str, request: Request) -> JSONResponse:
    rt = runtime(request)
    op = _find(rt, video_id, rt.auth.owner(request))
    return JSONResponse(_render(request, rt, op), headers=_poll_headers(rt))


@router.get(
    PREFIX + "/{video_id}/content",
    responses={**_CONTENT, **doc.errors(400, *doc.AUTH, 404, 416, 503)},
    openapi_extra=doc.extra([_VARIANT, doc.RANGE, *_COMPAT]),
)
async def video_content(video_id: str, request: Request) -> Response:
    rt = runtime(request)
    owner = rt.auth.owner(request)
    variant = request.query_params.get("variant") or "video"
    if variant not in VARIANTS:
        raise InvalidArgument(
            f"Invalid value at 'variant': {variant!r} (video, thumbnail or spritesheet)."
        )
    op = _find(rt, video_id, owner)
    openai = wants_openai(request, rt, op)
    status = translate.render_video(op, openai=openai, expires_at=None)["status"]
    if status != "completed":
        word = status or "queued"
        message = (
            f"Video {video_id} has no content: its generation failed."
            if op.done
            else f"Video {video_id} is not completed yet, current status: {word}"
        )
        raise FailedPrecondition(message)
    file_id = op.samples[0].file_id
    if variant == "video":
        opened = await run_in_threadpool(rt.service.files.open_file, file_id, owner)
        return file_response(
            request, opened, media_type=opened.record.mime_type, filename=f"{file_id}.mp4"
        )
    still, mime = await run_in_threadpool(rt.service.files.still, file_id, owner, variant)
    return Response(still, media_type=mime)


# ------------------------------------------------------------------------------ change


@router.delete(
    PREFIX + "/{video_id}",
    responses=doc.errors(*doc.AUTH, 404, 503),
    openapi_extra=doc.extra([doc.API_KEY]),
)
async def delete_video(video_id: str, request: Request) -> JSONResponse:
    rt = runtime(request)
    owner = rt.auth.owner(request)
    op = _find(rt, video_id, owner)
    await run_in_threadpool(rt.service.delete, op.id, owner)
    return JSONResponse({"id": translate.video_id(op), "object": "video.deleted", "deleted": True})


@router.post(
    PREFIX + "/{video_id}/remix",
    responses=doc.errors(400, *doc.AUTH, 404, 413, 429, 503),
    openapi_extra=doc.extra(
        [idempotency.PARAMETER, *_COMPAT],
        doc.body(RemixRequest, example={"prompt": doc.PROMPT}, form=_REMIX_FORM),
    ),
)
async def remix_video(video_id: str, request: Request) -> JSONResponse:
    """A new video from the source's request; it keeps the source's status words unless
    this request says otherwise."""
    rt = runtime(request)
    owner = rt.auth.owner(request)
    raw = await _read_body(request, rt.settings.max_request_bytes)
    key = idempotency.read_key(request)
    body = parse_body(RemixRequest, raw)
    source = _find(rt, video_id, owner)
    asked = _asked(request)
    openai = source.dialect == translate.OPENAI_DIALECT if asked is None else asked

    def submit() -> Operation:
        try:
            return rt.service.remix(
                source.id,
                owner,
                prompt=body.prompt,
                api_version=API_VERSION,
                dialect=translate.OPENAI_DIALECT if openai else translate.GATEWAY_DIALECT,
                notes={"remixed_from_video_id": translate.video_id(source)},
            )
        except RuleError as exc:
            raise translate.gateway_error(exc) from exc

    op = await run_in_threadpool(
        idempotency.create_once,
        rt.service,
        owner,
        key,
        route=f"POST {PREFIX}/{source.id}/remix",
        model=source.model,
        body=raw,
        submit=submit,
    )
    return JSONResponse(_render(request, rt, op), headers=_poll_headers(rt))
