"""`GET /v1beta/cinegen/usage`: what a key made, priced at Veo's list prices (a cinegen
extension, beside the Gemini API's paths; service/usage.py does the sums).

A key sees its own usage; an admin key (and the caller of an open server, which has no keys:
its operator) sees every key's, and may have it as CSV (`?format=csv` or `Accept: text/csv`).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cinegen.api import openapi as doc
from cinegen.api.runtime import Runtime, runtime
from cinegen.core.errors import PermissionDenied
from cinegen.service import usage
from cinegen.service.files import AdminOwner

router = APIRouter()

_CAMEL = {
    "key": "key",
    "model": "model",
    "mode": "mode",
    "resolution": "resolution",
    "day": "day",
    "operations": "operations",
    "seconds": "seconds",
    "samples": "samples",
    "engine_seconds": "engineSeconds",
    "veo_price_usd": "veoPriceUsd",
}
_SUMS = ("operations", "seconds", "samples", "engine_seconds", "veo_price_usd")
_PARAMETERS = [
    doc.parameter("query", "start", "RFC 3339 or YYYY-MM-DD (UTC); default today 00:00 UTC."),
    doc.parameter(
        "query",
        "end",
        "RFC 3339 (excluded) or YYYY-MM-DD (included); default the end of today UTC.",
    ),
    doc.parameter("query", "group_by", "Comma-separated: key, model, mode, resolution, day."),
    doc.parameter("query", "format", "`csv` for CSV (an admin key only)."),
    doc.API_KEY,
]


def _is_admin(rt: Runtime, owner: str | None) -> bool:
    return isinstance(owner, AdminOwner) or (owner is None and not rt.auth.keys_configured())


def _wants_csv(request: Request) -> bool:
    if request.query_params.get("format", "").lower() == "csv":
        return True
    return "text/csv" in request.headers.get("accept", "").lower()


@router.get(
    "/v1beta/cinegen/usage",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}}},
        **doc.errors(400, *doc.AUTH),
    },
    openapi_extra=doc.extra(_PARAMETERS),
)
async def get_usage(request: Request) -> Response:
    """The caller's usage in [start, end), summed per group; every key's for an admin."""
    rt = runtime(request)
    owner = rt.auth.owner(request)
    params = request.query_params
    query = usage.parse_query(params.get("start"), params.get("end"), params.get("group_by"))
    admin = _is_admin(rt, owner)
    if _wants_csv(request) and not admin:
        raise PermissionDenied("Usage as CSV is for an admin key. Ask for JSON instead.")
    result = await run_in_threadpool(
        usage.totals, rt.db, query, owner=None if admin else owner, everyone=admin
    )
    if _wants_csv(request):
        return Response(
            _csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="cinegen-usage.csv"'},
        )
    return JSONResponse(usage_json(result))


def usage_json(result: dict[str, Any]) -> dict[str, Any]:
    """`service.usage.totals` in the wire's shape (camelCase, RFC 3339 times)."""
    return {
        "start": _instant(result["start"]),
        "end": _instant(result["end"]),
        "groupBy": list(result["group_by"]),
        "rows": [_camel(row) for row in result["rows"]],
        "total": _camel({name: result["total"][name] for name in _SUMS}),
    }


def _camel(row: dict[str, Any]) -> dict[str, Any]:
    return {_CAMEL[name]: value for name, value in row.items()}


def _instant(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _csv(result: dict[str, Any]) -> str:
    """One line per group (the group's columns, then the sums), a header first."""
    columns = [*result["group_by"], *_SUMS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in result["rows"]:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return out.getvalue()
