"""The Gemini API's WebhookService: `/{v1beta|v1}/webhooks…` (spec gemini-webhooks.md §2).

snake_case out, snake or camel in; every success is a 200 with a JSON body (`{}` for delete
and ping: the 2.9+ Python SDK parses nothing else). Each key sees only its own webhooks.
Rotation answers on both `:rotateSigningSecret` (the reference) and `/rotate_secret` (the
guide's curl samples).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cinegen.api import openapi as doc
from cinegen.api.body import loads, parse_body, read_limited
from cinegen.api.runtime import runtime
from cinegen.core.errors import InvalidArgument, NotFound
from cinegen.service.webhooks import (
    EVENTS,
    WebhookFields,
    WebhookService,
    live_secrets,
    parse_update_mask,
    timestamp,
)
from cinegen.store.db import WebhookRecord, utcnow

VERSIONS = ("v1beta", "v1")
router = APIRouter()

Version = Annotated[str, doc.version_path(VERSIONS)]
WebhookId = Annotated[str, Path(description="The webhook's id (bare, not `webhooks/{id}`).")]


def _snake_or_camel(snake: str) -> Any:
    head, *rest = snake.split("_")
    camel = head + "".join(word.title() for word in rest)
    return Field(None, validation_alias=AliasChoices(snake, camel), serialization_alias=snake)


class WebhookBody(BaseModel):
    """A create or update body. Other fields (output-only ones an SDK echoes, `state` on
    create from 1.73.x clients) are ignored."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, description="A display name.")
    uri: str | None = Field(None, description="Where events are sent: https.")
    subscribed_events: list[str] | None = _snake_or_camel("subscribed_events")
    state: str | None = Field(None, description="Update only: `enabled` or `disabled`.")

    def fields(self) -> WebhookFields:
        return WebhookFields(self.name, self.uri, self.subscribed_events, self.state)


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    revocation_behavior: str | None = _snake_or_camel("revocation_behavior")


def service(request: Request) -> WebhookService:
    webhooks: WebhookService = request.app.state.webhooks
    return webhooks


def check_version(version: str) -> None:
    if version not in VERSIONS:
        raise NotFound("Method not found.")


def render(record: WebhookRecord, new_secret: str | None = None) -> dict[str, Any]:
    """The `Webhook` resource; `new_signing_secret` only in a create's answer."""
    out: dict[str, Any] = {"id": record.id}
    if record.name:
        out["name"] = record.name
    out["uri"] = record.uri
    out["subscribed_events"] = list(record.subscribed_events)
    out["state"] = record.state
    if new_secret is not None:
        out["new_signing_secret"] = new_secret
    out["signing_secrets"] = [
        {"truncated_secret": entry["truncated_secret"]}
        | ({"expire_time": entry["expire_time"]} if entry.get("expire_time") else {})
        for entry in live_secrets(record, utcnow())
    ]
    out["create_time"] = timestamp(record.create_time)
    out["update_time"] = timestamp(record.update_time)
    return out


async def _optional_json(request: Request) -> dict[str, Any]:
    """A body that may be absent or `{}` (ping, rotate)."""
    raw = await read_limited(request, runtime(request).settings.max_request_bytes)
    if not raw.strip():
        return {}
    payload = loads(raw)
    if not isinstance(payload, dict):
        raise InvalidArgument("Invalid JSON payload received. Expected an object.")
    return payload


async def _webhook_body(request: Request) -> WebhookBody:
    raw = await read_limited(request, runtime(request).settings.max_request_bytes)
    return parse_body(WebhookBody, loads(raw) if raw.strip() else {})


def query_param(request: Request, snake: str) -> str | None:
    """A query parameter by its snake_case name, or its lowerCamel spelling."""
    params = request.query_params
    head, *rest = snake.split("_")
    return params.get(snake, params.get(head + "".join(w.title() for w in rest)))


def page_size(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidArgument(f"Invalid page_size {value!r}: an integer is expected.") from exc


ERRORS = doc.errors(400, *doc.AUTH, 404, 429)
_CREATE_ERRORS = {
    **ERRORS,
    409: {
        "model": doc.GoogleError,
        "description": "ALREADY_EXISTS: the `webhook_id` asked for (SDK 1.73.x) is in use.",
    },
}
_EXAMPLE = {
    "name": "MyVideoHook",
    "uri": "https://example.com/gemini-callback",
    "subscribed_events": ["video.generated"],
}
_EVENTS_DOC = f"Events: {', '.join(sorted(EVENTS))}."
_CREATE = doc.extra(
    [
        doc.parameter("query", "webhook_id", "SDK 1.73.x only: the id to give the webhook."),
        doc.API_KEY,
    ],
    doc.body(WebhookBody, example=_EXAMPLE, description=_EVENTS_DOC),
)
LIST_DOC = doc.extra(
    [
        doc.parameter(
            "query", "page_size", "Default 50, at most 1000.", {"type": "integer", "minimum": 0}
        ),
        doc.parameter("query", "page_token", "The `next_page_token` of the previous page."),
        doc.API_KEY,
    ]
)
_UPDATE = doc.extra(
    [
        doc.parameter(
            "query", "update_mask", "Comma-separated: name, uri, subscribed_events, state."
        ),
        doc.API_KEY,
    ],
    doc.body(WebhookBody, example={"subscribed_events": ["video.generated"]}),
)
_ROTATE_BODY = doc.body(
    RotateBody, example={"revocation_behavior": "revoke_previous_secrets_after_h24"}
)
_ROTATE = doc.extra([doc.API_KEY], {**_ROTATE_BODY, "required": False})
_KEY_ONLY = doc.extra([doc.API_KEY])


@router.post("/{version}/webhooks", responses=_CREATE_ERRORS, openapi_extra=_CREATE)
async def create_webhook(version: Version, request: Request) -> JSONResponse:
    """A new webhook; its signing secret is in `new_signing_secret`, this once."""
    check_version(version)
    owner = runtime(request).auth.owner(request)
    body = await _webhook_body(request)
    webhook_id = request.query_params.get("webhook_id")
    record, secret = await run_in_threadpool(
        service(request).create, owner, body.fields(), webhook_id
    )
    return JSONResponse(render(record, secret))


@router.get("/{version}/webhooks", responses=ERRORS, openapi_extra=LIST_DOC)
async def list_webhooks(version: Version, request: Request) -> JSONResponse:
    check_version(version)
    owner = runtime(request).auth.owner(request)
    size = page_size(query_param(request, "page_size"))
    token = query_param(request, "page_token")
    records, next_token = await run_in_threadpool(service(request).page, owner, size, token)
    out: dict[str, Any] = {"webhooks": [render(record) for record in records]}
    if next_token:
        out["next_page_token"] = next_token
    return JSONResponse(out)


@router.get("/{version}/webhooks/{webhook_id}", responses=ERRORS, openapi_extra=_KEY_ONLY)
async def get_webhook(version: Version, webhook_id: WebhookId, request: Request) -> JSONResponse:
    check_version(version)
    owner = runtime(request).auth.owner(request)
    record = await run_in_threadpool(service(request).get, owner, webhook_id)
    return JSONResponse(render(record))


@router.patch("/{version}/webhooks/{webhook_id}", responses=ERRORS, openapi_extra=_UPDATE)
async def update_webhook(version: Version, webhook_id: WebhookId, request: Request) -> JSONResponse:
    """Changes the fields in `update_mask`, or without one every field the body has."""
    check_version(version)
    owner = runtime(request).auth.owner(request)
    mask = parse_update_mask(query_param(request, "update_mask"))
    body = await _webhook_body(request)
    record = await run_in_threadpool(
        service(request).update, owner, webhook_id, body.fields(), mask
    )
    return JSONResponse(render(record))


@router.delete("/{version}/webhooks/{webhook_id}", responses=ERRORS, openapi_extra=_KEY_ONLY)
async def delete_webhook(version: Version, webhook_id: WebhookId, request: Request) -> JSONResponse:
    check_version(version)
    owner = runtime(request).auth.owner(request)
    await run_in_threadpool(service(request).delete, owner, webhook_id)
    return JSONResponse({})


@router.post("/{version}/webhooks/{webhook_id}:ping", responses=ERRORS, openapi_extra=_KEY_ONLY)
async def ping_webhook(version: Version, webhook_id: WebhookId, request: Request) -> JSONResponse:
    """Queues one `webhook.ping` event to the webhook (a single attempt)."""
    check_version(version)
    owner = runtime(request).auth.owner(request)
    await _optional_json(request)
    await run_in_threadpool(service(request).ping, owner, webhook_id)
    return JSONResponse({})


async def _rotate(version: str, webhook_id: str, request: Request) -> JSONResponse:
    check_version(version)
    owner = runtime(request).auth.owner(request)
    body = parse_body(RotateBody, await _optional_json(request))
    secret = await run_in_threadpool(
        service(request).rotate, owner, webhook_id, body.revocation_behavior
    )
    return JSONResponse({"secret": secret})


@router.post(
    "/{version}/webhooks/{webhook_id}:rotateSigningSecret",
    responses=ERRORS,
    openapi_extra=_ROTATE,
)
async def rotate_signing_secret(
    version: Version, webhook_id: WebhookId, request: Request
) -> JSONResponse:
    """A new signing secret, answered this once; the previous ones stay valid for 24 h
    (`revoke_previous_secrets_after_h24`, the default) or end now."""
    return await _rotate(version, webhook_id, request)


@router.post(
    "/{version}/webhooks/{webhook_id}/rotate_secret", responses=ERRORS, openapi_extra=_ROTATE
)
async def rotate_secret(version: Version, webhook_id: WebhookId, request: Request) -> JSONResponse:
    """The same as `:rotateSigningSecret` (the path of the guide's curl samples)."""
    return await _rotate(version, webhook_id, request)
