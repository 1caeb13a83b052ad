"""`/v1beta/cinegen/keys`: an admin key manages API keys over HTTP (a cinegen extension).

GET lists them with their usage today, POST creates one and answers the key once, PATCH
changes one, DELETE removes one. Any other key is refused 403 PERMISSION_DENIED. `cinegen
keys` does the same on the server's own machine. In a body a limit of `null` is the server's
default (settings) and `0` no limit; on PATCH a field left out stays as it is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cinegen.api import openapi as doc
from cinegen.api.auth import create_key, rfc3339
from cinegen.api.body import parse_body, read_json
from cinegen.api.runtime import Runtime, runtime
from cinegen.core.errors import NotFound, PermissionDenied
from cinegen.service.files import AdminOwner
from cinegen.service.quotas import Usage, limits_of, usage_today_by_key
from cinegen.settings import Settings
from cinegen.store.db import KeyRecord, utcnow

PREFIX = "/v1beta/cinegen/keys"
router = APIRouter()

Limit = Annotated[int | None, Field(ge=0, le=2**31 - 1)]


class KeyBody(BaseModel):
    """A key's fields in a POST or PATCH body (camelCase, as Google's JSON)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=128)
    admin: bool | None = None
    expireTime: datetime | None = Field(None, description="RFC 3339; null: never expires")
    expiresDays: float | None = Field(None, gt=0, le=36500, description="From now, in days")
    maxConcurrent: Limit = Field(None, description="Queued + running; null: default; 0: none")
    videoSecondsPerDay: Limit = Field(None, description="Seconds asked for a UTC day")
    requestsPerMinute: Limit = Field(None, description="Requests other than reads a minute")
    revoked: bool | None = Field(None, description="PATCH: true revokes the key (403 after)")


_COLUMNS = {
    "name": "name",
    "admin": "admin",
    "maxConcurrent": "max_concurrent",
    "videoSecondsPerDay": "video_seconds_per_day",
    "requestsPerMinute": "requests_per_minute",
}


def key_changes(body: KeyBody) -> dict[str, Any]:
    """The columns a body sets: only the fields it names (null names a default)."""
    given = body.model_fields_set
    changes = {_COLUMNS[f]: getattr(body, f) for f in _COLUMNS if f in given}
    if changes.get("name", "") is None:
        changes["name"] = ""
    if changes.get("admin", False) is None:
        changes["admin"] = False
    if "expiresDays" in given and body.expiresDays is not None:
        changes["expire_time"] = utcnow() + timedelta(days=body.expiresDays)
    elif "expireTime" in given:
        changes["expire_time"] = body.expireTime
    if "revoked" in given:
        changes["revoke_time"] = utcnow() if body.revoked else None
    return changes


def render_key(key: KeyRecord, settings: Settings, usage: Usage) -> dict[str, Any]:
    """A key as JSON: its own limits (null: the default) and those in force."""
    limits = limits_of(key, settings)
    out: dict[str, Any] = {
        "id": key.id,
        "name": key.name,
        "admin": key.admin,
        "createTime": rfc3339(key.create_time),
        "expireTime": rfc3339(key.expire_time) if key.expire_time else None,
        "revoked": key.revoke_time is not None,
        "maxConcurrent": key.max_concurrent,
        "videoSecondsPerDay": key.video_seconds_per_day,
        "requestsPerMinute": key.requests_per_minute,
        "limits": {
            "maxConcurrent": limits.max_concurrent,
            "videoSecondsPerDay": limits.video_seconds_per_day,
            "requestsPerMinute": limits.requests_per_minute,
        },
        "usageToday": {"operations": usage.operations, "videoSeconds": usage.video_seconds},
    }
    return out


def _admin(request: Request) -> Runtime:
    rt = runtime(request)
    if not isinstance(rt.auth.owner(request), AdminOwner):
        raise PermissionDenied(
            "Only an admin API key may manage keys (`cinegen keys create --admin`)."
        )
    return rt


def _rendered(rt: Runtime, key_id: str) -> dict[str, Any]:
    key = rt.db.get_key(key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.")
    return render_key(key, rt.settings, usage_today_by_key(rt.db).get(key_id, Usage()))


_ERRORS = doc.errors(400, *doc.AUTH, 404, 429)
_BODY = doc.extra(
    [doc.API_KEY],
    doc.body(KeyBody, example={"name": "ci", "maxConcurrent": 4, "videoSecondsPerDay": 600}),
)


@router.get(PREFIX, responses=_ERRORS, openapi_extra=doc.extra([doc.API_KEY]))
async def list_keys(request: Request) -> JSONResponse:
    rt = _admin(request)

    def listed() -> list[dict[str, Any]]:
        usage = usage_today_by_key(rt.db)
        return [render_key(k, rt.settings, usage.get(k.id, Usage())) for k in rt.db.list_keys()]

    return JSONResponse({"keys": await run_in_threadpool(listed)})


@router.post(PREFIX, responses=_ERRORS, openapi_extra=_BODY)
async def create(request: Request) -> JSONResponse:
    """The key is in the answer's `key`, this once; it is stored hashed."""
    rt = _admin(request)
    body = parse_body(KeyBody, await read_json(request, rt.settings.max_request_bytes))
    changes = key_changes(body)
    name = changes.pop("name", "")

    def made() -> dict[str, Any]:
        key_id, key = create_key(rt.db, name, **changes)
        rt.auth.forget()
        return {**_rendered(rt, key_id), "key": key}

    return JSONResponse(await run_in_threadpool(made))


@router.patch(PREFIX + "/{key_id}", responses=_ERRORS, openapi_extra=_BODY)
async def update(key_id: str, request: Request) -> JSONResponse:
    rt = _admin(request)
    body = parse_body(KeyBody, await read_json(request, rt.settings.max_request_bytes))

    def changed() -> dict[str, Any]:
        if not rt.db.update_key(key_id, **key_changes(body)):
            raise NotFound(f"No API key with id {key_id}.")
        rt.auth.forget()
        return _rendered(rt, key_id)

    return JSONResponse(await run_in_threadpool(changed))


@router.delete(PREFIX + "/{key_id}", responses=_ERRORS, openapi_extra=doc.extra([doc.API_KEY]))
async def delete(key_id: str, request: Request) -> JSONResponse:
    rt = _admin(request)
    if not await run_in_threadpool(rt.db.delete_key, key_id):
        raise NotFound(f"No API key with id {key_id}.")
    rt.auth.forget()
    return JSONResponse({})
