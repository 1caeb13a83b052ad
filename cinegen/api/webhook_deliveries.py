"""A webhook's deliveries (a cinegen extension to the WebhookService): what was sent, when,
and what the receiver answered; and a resend.

`GET /{v1beta|v1}/webhooks/{id}/deliveries` lists them newest first (`page_size`, default 50,
at most 1000; `page_token`); `POST …/deliveries/{delivery_id}:resend` queues one again, due
now, with the same `webhook-id` and body. Each key sees only its own webhooks' deliveries.

`GET /{v1beta|v1}/operations/{op_id}/webhookDeliveries` lists one operation's deliveries
(static and dynamic targets, each with its `target_host`), for whoever may read that
operation: the playground shows whether its webhook was delivered.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cinegen.api import openapi as doc
from cinegen.api.runtime import runtime
from cinegen.api.webhooks import (
    ERRORS,
    LIST_DOC,
    Version,
    check_version,
    page_size,
    query_param,
)
from cinegen.service.deliveries import DeliveryService

router = APIRouter()

WebhookId = Annotated[str, Path(description="The webhook's id.")]
DeliveryId = Annotated[str, Path(description="The delivery's id, from the listing.")]
OperationId = Annotated[str, Path(description="The operation's id (its name's last part).")]

_KEY_ONLY = doc.extra([doc.API_KEY])


def _service(request: Request) -> DeliveryService:
    return DeliveryService(runtime(request).db)


@router.get("/{version}/webhooks/{webhook_id}/deliveries", responses=ERRORS, openapi_extra=LIST_DOC)
async def list_deliveries(
    version: Version, webhook_id: WebhookId, request: Request
) -> JSONResponse:
    """The webhook's deliveries, newest first, each with its attempts."""
    check_version(version)
    owner = runtime(request).auth.owner(request)
    size = page_size(query_param(request, "page_size"))
    token = query_param(request, "page_token")
    items, next_token = await run_in_threadpool(
        _service(request).page, owner, webhook_id, size, token
    )
    out: dict[str, Any] = {"deliveries": items}
    if next_token:
        out["next_page_token"] = next_token
    return JSONResponse(out)


@router.post(
    "/{version}/webhooks/{webhook_id}/deliveries/{delivery_id}:resend",
    responses=ERRORS,
    openapi_extra=_KEY_ONLY,
)
async def resend_delivery(
    version: Version, webhook_id: WebhookId, delivery_id: DeliveryId, request: Request
) -> JSONResponse:
    """Queues the delivery again, due now (same `webhook-id` and body); the delivery."""
    check_version(version)
    owner = runtime(request).auth.owner(request)
    delivery = await run_in_threadpool(_service(request).resend, owner, webhook_id, delivery_id)
    return JSONResponse(delivery)


@router.get(
    "/{version}/operations/{op_id}/webhookDeliveries", responses=ERRORS, openapi_extra=_KEY_ONLY
)
async def operation_deliveries(
    version: Version, op_id: OperationId, request: Request
) -> JSONResponse:
    """The operation's webhook deliveries, newest first, each with its attempts and target
    host; empty when it has none (not finished, or no webhook)."""
    check_version(version)
    rt = runtime(request)
    owner = rt.auth.owner(request)
    await run_in_threadpool(rt.service.get, op_id, owner)  # NotFound unless visible
    items = await run_in_threadpool(_service(request).of_operation, op_id)
    return JSONResponse({"deliveries": items})
