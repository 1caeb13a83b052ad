"""Gemini API routes, under /v1beta, /v1 and /v1alpha.

predictLongRunning, operations (get, list, cancel, delete), files download, models.
Every success is exactly 200: the Python SDK treats anything else as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cinegen.api import idempotency
from cinegen.api import openapi as doc
from cinegen.api.body import parse_body, read_json
from cinegen.api.hosts import public_base
from cinegen.api.runtime import Runtime, runtime
from cinegen.api.streaming import file_response, without_body
from cinegen.core import rules
from cinegen.core.catalog import ModelInfo
from cinegen.core.errors import InvalidArgument, NotFound
from cinegen.core.operation import Operation
from cinegen.service.operations import OperationService

from .translate import file_id_from_uri, operation_name, render_operation, to_request
from .wire import PredictLongRunningRequest

VERSIONS = ("v1beta", "v1", "v1alpha")
router = APIRouter()

Version = Annotated[str, doc.version_path(VERSIONS)]
Model = Annotated[str, doc.model_path()]
_VERSION = doc.version_parameter(VERSIONS)
_MODEL = doc.parameter("path", "model", doc.MODEL)
_OP_ID = doc.parameter("path", "op_id", "The operation's id, the last part of its name.")
FileRest = Annotated[
    str,
    Path(
        description="`{id}` (metadata), `{id}:download` (the MP4), or the `uri` an SDK "
        "rebuilds from an `http://` file uri."
    ),
]
_ALT = doc.parameter("query", "alt", "`media`: the file's bytes rather than its metadata.")
_PAGE_SIZE = doc.parameter(
    "query", "pageSize", "At most this many operations.", {"type": "integer", "minimum": 0}
)
_PAGE_TOKEN = doc.parameter("query", "pageToken", "The `nextPageToken` of the previous page.")
_POLL_ERRORS = doc.errors(*doc.AUTH, 404)


# polls first: the hot path. These take only the Request and read the path parameters
# themselves, which skips FastAPI's per-parameter validation (a large part of a poll's cost).


@router.get(
    "/{version}/models/{model}/operations/{op_id}",
    responses=_POLL_ERRORS,
    openapi_extra=doc.extra([_VERSION, _MODEL, _OP_ID, doc.API_KEY]),
)
async def get_model_operation(request: Request) -> JSONResponse:
    return _operation_json(request)


@router.get(
    "/{version}/operations/{op_id}",
    responses=_POLL_ERRORS,
    openapi_extra=doc.extra([_VERSION, _OP_ID, doc.API_KEY]),
)
async def get_operation(request: Request) -> JSONResponse:
    return _operation_json(request)


def _operation_json(request: Request) -> JSONResponse:
    rt = runtime(request)
    version = _version(request.path_params["version"])
    op = rt.service.get(request.path_params["op_id"], rt.auth.owner(request))
    return JSONResponse(render_operation(op, video_uri_builder(request, rt, version)))


def _version(version: str) -> str:
    if version not in VERSIONS:
        raise NotFound("Method not found.")
    return version


def video_uri_builder(request: Request, rt: Runtime, version: str) -> Callable[[str], str]:
    base = public_base(request, rt.settings)
    return lambda file_id: f"{base}/{version}/files/{file_id}:download?alt=media"


# create -----------------------------------------------------------------------------------


@router.post(
    "/{version}/models/{model}:predictLongRunning",
    responses=doc.errors(400, *doc.AUTH, 404, 413, 429, 503),
    openapi_extra=doc.extra(
        [idempotency.PARAMETER, doc.API_KEY],
        doc.body(PredictLongRunningRequest, example=doc.PREDICT_EXAMPLE),
    ),
)
async def predict_long_running(version: Version, model: Model, request: Request) -> JSONResponse:
    """With an `Idempotency-Key`, a repeated create answers the first one's name."""
    rt = runtime(request)
    _version(version)
    owner = rt.auth.owner(request)
    rules.resolve_model(model, version, rt.catalog)
    key = idempotency.read_key(request)
    payload = await read_json(request, rt.settings.max_request_bytes)
    op = await run_in_threadpool(
        idempotency.create_once,
        rt.service,
        owner,
        key,
        route=f"gemini {version}",
        model=model,
        body=payload,
        submit=lambda: submit_prediction(rt.service, model, version, payload, owner),
    )
    return JSONResponse({"name": operation_name(op)})


def submit_prediction(
    service: OperationService, model: str, version: str, payload: Any, owner: str | None
) -> Operation:
    """A `predictLongRunning` body, checked and submitted: the route's path and the CLI's."""
    rules.resolve_model(model, version, service.catalog)
    req = to_request(parse_body(PredictLongRunningRequest, payload), model)
    return service.submit(req, owner=owner, api_version=version)


# operations -------------------------------------------------------------------------------


def _list(request: Request, version: str, model: str | None) -> JSONResponse:
    rt = runtime(request)
    owner = rt.auth.owner(request)
    size = request.query_params.get("pageSize")
    # ASCII digits, at most an int32's ten: `isdigit()` alone takes "²" and 5 000 nines.
    if size is not None and not (size.isascii() and size.isdigit() and len(size) <= 10):
        raise InvalidArgument(f"Invalid value at 'page_size' (TYPE_INT32), \"{size}\"")
    page = rt.service.list_page(
        owner,
        model=model,
        page_size=int(size) if size else None,
        page_token=request.query_params.get("pageToken") or None,
    )
    uri = video_uri_builder(request, rt, version)
    body: dict[str, Any] = {"operations": [render_operation(op, uri) for op in page.operations]}
    if page.next_page_token:
        body["nextPageToken"] = page.next_page_token
    return JSONResponse(body)


_LIST_ERRORS = doc.errors(400, *doc.AUTH, 404)
_LIST_EXTRA = doc.extra([_PAGE_SIZE, _PAGE_TOKEN, doc.API_KEY])


@router.get("/{version}/operations", responses=_LIST_ERRORS, openapi_extra=_LIST_EXTRA)
async def list_operations(version: Version, request: Request) -> JSONResponse:
    return _list(request, _version(version), None)


@router.get(
    "/{version}/models/{model}/operations", responses=_LIST_ERRORS, openapi_extra=_LIST_EXTRA
)
async def list_model_operations(version: Version, model: Model, request: Request) -> JSONResponse:
    return _list(request, _version(version), model.removeprefix("models/"))


async def _cancel(request: Request, op_id: str) -> JSONResponse:
    rt = runtime(request)
    await run_in_threadpool(rt.service.cancel, op_id, rt.auth.owner(request))
    return JSONResponse({})


_CHANGE_ERRORS = doc.errors(*doc.AUTH, 404, 503)
_KEY_ONLY = doc.extra([doc.API_KEY])


@router.post(
    "/{version}/models/{model}/operations/{op_id}:cancel",
    responses=_CHANGE_ERRORS,
    openapi_extra=_KEY_ONLY,
)
async def cancel_model_operation(
    version: Version, model: Model, op_id: str, request: Request
) -> JSONResponse:
    _version(version)
    return await _cancel(request, op_id)


@router.post(
    "/{version}/operations/{op_id}:cancel", responses=_CHANGE_ERRORS, openapi_extra=_KEY_ONLY
)
async def cancel_operation(version: Version, op_id: str, request: Request) -> JSONResponse:
    _version(version)
    return await _cancel(request, op_id)


async def _delete(request: Request, op_id: str) -> JSONResponse:
    rt = runtime(request)
    await run_in_threadpool(rt.service.delete, op_id, rt.auth.owner(request))
    return JSONResponse({})


@router.delete(
    "/{version}/models/{model}/operations/{op_id}",
    responses=_CHANGE_ERRORS,
    openapi_extra=_KEY_ONLY,
)
async def delete_model_operation(
    version: Version, model: Model, op_id: str, request: Request
) -> JSONResponse:
    _version(version)
    return await _delete(request, op_id)


@router.delete("/{version}/operations/{op_id}", responses=_CHANGE_ERRORS, openapi_extra=_KEY_ONLY)
async def delete_operation(version: Version, op_id: str, request: Request) -> JSONResponse:
    _version(version)
    return await _delete(request, op_id)


# files ------------------------------------------------------------------------------------


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: doc.binary("video/mp4"),
    206: {"description": "The bytes of the `Range` asked for.", **doc.binary("video/mp4")},
    **doc.errors(*doc.AUTH, 404, 416, 503),
}
_FILE_EXTRA = doc.extra([_ALT, doc.RANGE, doc.API_KEY])


@router.get("/{version}/files/{rest:path}", responses=_FILE_RESPONSES, openapi_extra=_FILE_EXTRA)
@router.head("/{version}/files/{rest:path}", responses=_FILE_RESPONSES, openapi_extra=_FILE_EXTRA)
async def get_file(version: Version, rest: FileRest, request: Request) -> Any:
    """`files/{id}:download?alt=media` streams the MP4 (Range supported); `files/{id}` is its
    metadata; HEAD answers either with the headers alone. Also serves the path the SDKs build
    from an `http://` uri (`files/http://host/v1beta/files/{id}:download`), so plain-http
    local use works."""
    rt = runtime(request)
    _version(version)
    owner = rt.auth.owner(request)
    download = (
        rest.endswith(":download")
        or ":download" in request.url.query
        or request.query_params.get("alt") == "media"
    )
    file_id = file_id_from_uri(rest.removesuffix(":download"))
    if download:
        opened = await run_in_threadpool(rt.service.files.open_file, file_id, owner)
        return file_response(
            request, opened, media_type=opened.record.mime_type, filename=f"{file_id}.mp4"
        )
    record = rt.service.files.visible_file(file_id, owner)
    metadata = JSONResponse(
        {
            "name": f"files/{record.id}",
            "mimeType": record.mime_type,
            "sizeBytes": str(record.size_bytes),
            "createTime": record.create_time.isoformat().replace("+00:00", "Z"),
            "expirationTime": record.expire_time.isoformat().replace("+00:00", "Z"),
            "state": "ACTIVE",
            "uri": video_uri_builder(request, rt, version)(record.id),
        }
    )
    return without_body(metadata) if request.method == "HEAD" else metadata


# models -----------------------------------------------------------------------------------


def model_json(model: ModelInfo) -> dict[str, Any]:
    return {
        "name": f"models/{model.id}",
        "version": "cinegen",
        "displayName": model.display_name,
        "description": model.description,
        "inputTokenLimit": 1024,
        "outputTokenLimit": 0,
        "supportedGenerationMethods": ["predictLongRunning"],
        "cinegen": {
            "engine": model.engine,
            "audio": model.audio,
            "durations": list(model.durations),
            "resolutions": list(model.resolutions),
            "referenceImages": model.max_references_asset,
            "styleReference": model.style_reference,
            "extension": model.extension,
            "maxSamples": model.max_samples_gemini,
            "hdLandscapeOnly": model.hd_landscape_only,
        },
    }


_MODELS_ERRORS = doc.errors(*doc.AUTH, 404)


@router.get("/{version}/models", responses=_MODELS_ERRORS, openapi_extra=_KEY_ONLY)
async def list_models(version: Version, request: Request) -> JSONResponse:
    _version(version)
    runtime(request).auth.owner(request)
    return JSONResponse({"models": [model_json(m) for m in runtime(request).catalog.rows()]})


@router.get("/{version}/models/{model}", responses=_MODELS_ERRORS, openapi_extra=_KEY_ONLY)
async def get_model(version: Version, model: Model, request: Request) -> JSONResponse:
    _version(version)
    runtime(request).auth.owner(request)
    return JSONResponse(model_json(rules.resolve_model(model, version, runtime(request).catalog)))
