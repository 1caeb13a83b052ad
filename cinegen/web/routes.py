"""The playground: `/` and its static files, shipped in the package (no build step).

The page is plain HTML, CSS and ES modules; it talks to the server through the Gemini API
dialect like any other client, so these routes only hand out files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from cinegen.api import openapi as doc
from cinegen.core.errors import NotFound

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
# Revalidate on every load: a new cinegen version must never run yesterday's script.
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter()


def _static_file(name: str) -> FileResponse:
    try:
        path = (STATIC / name).resolve()
        found = path.is_relative_to(STATIC) and path.is_file() and path.suffix in _TYPES
    except (OSError, ValueError):  # a name no file can have (too long, a NUL): not one here
        found = False
    if not found:
        raise NotFound("Method not found.")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)


@router.get("/", response_class=HTMLResponse)
async def playground() -> FileResponse:
    return _static_file("index.html")


@router.get(
    "/static/{name:path}",
    response_class=Response,
    responses={200: {"content": {t: {} for t in sorted(set(_TYPES.values()))}}, **doc.errors(404)},
)
async def static_file(name: str) -> FileResponse:
    return _static_file(name)
