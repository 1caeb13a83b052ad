"""Vertex AI routes, under /v1 and /v1beta1, with and without `projects/{p}/locations/{l}/`.

`publishers/google/models/{m}:predictLongRunning` creates, `:fetchPredictOperation` polls (what
google-genai 3.x and @google/genai send in Vertex mode), and a GET of the operation name polls
too, as Vertex long-running operations allow. Auth and tenancy are the Gemini dialect's:
`x-goog-api-key` (Vertex express) or `Authorization: Bearer`. Every success is exactly 200.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cinegen.api import idempotency
from cinegen.api import openapi as doc
from cinegen.api.body import parse_body, read_json
from cinegen.api.gemini.translate import to_request
from cinegen.api.runtime import Runtime, runtime
from cinegen.core import rules
from cinegen.core.catalog import ModelInfo
from cinegen.core.errors import InvalidArgument, NotFound
from cinegen.core.operation import Operation, Sample

from .translate import (
    PUBLISHER,
    coerce_proto_integers,
    has_inline_videos,
    operation_name,
    parse_operation_name,
    render_operation,
    resource_prefix,
    write_operation,
)
from .wire import FetchPredictOperationRequest, PredictLongRunningRequest

VERSIONS = ("v1", "v1beta1")
_SCOPED = "/{version}/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}"
_EXPRESS = "/{version}/publishers/{publisher}/models/{model}"

router = APIRouter()

_SCOPE_PARAMETERS = [
    doc.parameter("path", "project", "The Google Cloud project: kept in operation names."),
    doc.parameter("path", "location", "The region, e.g. `us-central1`: kept in operation names."),
]
_PARAMETERS = [
    doc.version_parameter(VERSIONS),
    doc.parameter(
        "path", "publisher", "Only `google` has models.", {"type": "string", "enum": [PUBLISHER]}
    ),
    doc.parameter("path", "model", doc.MODEL),
    doc.API_KEY,
]
_OP_ID = doc.parameter("path", "op_id", "The operation's id, the last part of its name.")
_CREATE_ERRORS = doc.errors(400, *doc.AUTH, 404, 413, 429, 503)
_POLL_ERRORS = doc.errors(400, *doc.AUTH, 404, 413, 503)
_GET_ERRORS = doc.errors(*doc.AUTH, 404, 503)


def _extra(
    scoped: bool, *more: dict[str, Any], request_body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`openapi_extra=` of a route in its scoped or express form (these routes read their
    path parameters from the request, so FastAPI documents none of them)."""
    scope = _SCOPE_PARAMETERS if scoped else []
    return doc.extra([*scope, *_PARAMETERS, *more], request_body)


def _version(request: Request) -> str:
    version = request.path_params["version"]
    if version not in VERSIONS:
        raise NotFound("Method not found.")
    return version


def _prefix(request: Request) -> str:
    params = request.path_params
    return resource_prefix(params.get("project"), params.get("location"))


def _model(request: Request, version: str) -> str:
    """The model id of the URL; only Google's publisher models exist here."""
    model = request.path_params["model"]
    if request.path_params["publisher"] != PUBLISHER:
        raise rules.model_not_found(f"{request.path_params['publisher']}/{model}", version)
    return rules.resolve_model(model, version, runtime(request).catalog).id


POLL_BODY = "vertex-operation.json"
"""The finished operation's poll body, kept beside its first video (FileService.derived_body)."""

_CHUNK_BYTES = 1 << 16
# 64 KiB: with 1 MiB chunks 16 concurrent polls still cost the server +137 MB (the threads'
# malloc arenas keep what they touched); with 64 KiB, +11 MB (bench/memory.py --polls 16).


def _video_reader(rt: Runtime, owner: str | None) -> Callable[[Sample], bytes]:
    def read(sample: Sample) -> bytes:
        return rt.service.files.read_file(sample.file_id, owner)

    return read


async def _render(rt: Runtime, op: Operation, owner: str | None) -> Response:
    if has_inline_videos(op):  # base64 MP4s: made once, off the event loop, then streamed
        return await run_in_threadpool(_stored_body, rt, op, owner)
    return JSONResponse(render_operation(op, _video_reader(rt, owner)))


def _stored_body(rt: Runtime, op: Operation, owner: str | None) -> Response:
    """A finished operation never changes: its body (tens of MB of base64 for a 4k lossless
    sample) is written once as a blob and every poll streams that copy, a chunk at a time."""
    files = rt.service.files

    def write(out: BinaryIO) -> None:
        write_operation(op, lambda sample: files.open_file(sample.file_id, owner).stream, out)

    stream, size = files.derived_body([s.file_id for s in op.samples], owner, POLL_BODY, write)
    return StreamingResponse(
        _chunks(stream), media_type="application/json", headers={"content-length": str(size)}
    )


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(_CHUNK_BYTES):
            yield chunk


# create -----------------------------------------------------------------------------------


_CREATE_BODY = doc.body(PredictLongRunningRequest, example=doc.PREDICT_EXAMPLE)


@router.post(
    _SCOPED + ":predictLongRunning",
    responses=_CREATE_ERRORS,
    openapi_extra=_extra(True, idempotency.PARAMETER, request_body=_CREATE_BODY),
)
@router.post(
    _EXPRESS + ":predictLongRunning",
    responses=_CREATE_ERRORS,
    openapi_extra=_extra(False, idempotency.PARAMETER, request_body=_CREATE_BODY),
)
async def predict_long_running(request: Request) -> JSONResponse:
    """With an `Idempotency-Key`, a repeated create answers the first one's name (the key is
    bound to this route's project and location, which the name carries)."""
    rt = runtime(request)
    version = _version(request)
    owner = rt.auth.owner(request)
    model = _model(request, version)
    key = idempotency.read_key(request)
    payload = await read_json(request, rt.settings.max_request_bytes)
    body = parse_body(PredictLongRunningRequest, coerce_proto_integers(payload))
    req = to_request(body, model, dialect="vertex")
    prefix = _prefix(request)
    op = await run_in_threadpool(
        idempotency.create_once,
        rt.service,
        owner,
        key,
        route=f"vertex {version} {prefix}",
        model=model,
        body=payload,
        submit=lambda: rt.service.submit(
            req, owner=owner, api_version=version, resource_prefix=prefix
        ),
    )
    return JSONResponse({"name": operation_name(op)})


# poll -------------------------------------------------------------------------------------


_POLL_BODY = doc.body(
    FetchPredictOperationRequest,
    example={
        "operationName": "projects/my-project/locations/us-central1/publishers/google/models/"
        "veo-3.1-generate-preview/operations/0"
    },
)


@router.post(
    _SCOPED + ":fetchPredictOperation",
    responses=_POLL_ERRORS,
    openapi_extra=_extra(True, request_body=_POLL_BODY),
)
@router.post(
    _EXPRESS + ":fetchPredictOperation",
    responses=_POLL_ERRORS,
    openapi_extra=_extra(False, request_body=_POLL_BODY),
)
async def fetch_predict_operation(request: Request) -> Response:
    rt = runtime(request)
    version = _version(request)
    owner = rt.auth.owner(request)
    model = _model(request, version)
    payload = await read_json(request, 64 * 1024)
    body = parse_body(FetchPredictOperationRequest, payload)
    _prefix_of_name, name_model, op_id = parse_operation_name(body.operation_name)
    op = rt.service.get(op_id, owner)
    _check_model(rt.catalog.get(name_model), op)
    if model != op.model:
        raise InvalidArgument(
            f"The operation `{body.operation_name}` belongs to model `{op.model}`, "
            f"not to `{model}`: call `{op.model}:fetchPredictOperation`.",
        )
    return await _render(rt, op, owner)


@router.get(
    _SCOPED + "/operations/{op_id}", responses=_GET_ERRORS, openapi_extra=_extra(True, _OP_ID)
)
@router.get(
    _EXPRESS + "/operations/{op_id}", responses=_GET_ERRORS, openapi_extra=_extra(False, _OP_ID)
)
async def get_operation(request: Request) -> Response:
    rt = runtime(request)
    _version(request)
    owner = rt.auth.owner(request)
    op = rt.service.get(request.path_params["op_id"], owner)
    _check_model(rt.catalog.get(request.path_params["model"]), op)
    return await _render(rt, op, owner)


def _check_model(info: ModelInfo | None, op: Operation) -> None:
    """A name whose model is not the operation's does not name it: 404, as for a wrong id."""
    if info is None or info.id != op.model:
        raise NotFound(f"Operation {op.id} not found.")
