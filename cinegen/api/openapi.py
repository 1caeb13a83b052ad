"""What `/openapi.json` says of each route: its body, its parameters and its errors.

The routes read their bodies themselves (api/body.py: limits while streaming, Google's
wording for a bad field), so FastAPI sees no body to document. These helpers describe them
from the same wire models through `openapi_extra`, which changes nothing of how a request is
parsed, and give every route the one error envelope it answers in, so that a client (or
schemathesis) can know the real bodies and errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import Path
from pydantic import BaseModel, Field

from cinegen.core.catalog import MODELS


class GoogleErrorStatus(BaseModel):
    code: int = Field(description="The HTTP status code, repeated.")
    message: str = Field(description="What went wrong, in Google's words where Veo has some.")
    status: str = Field(description="The google.rpc status word, e.g. INVALID_ARGUMENT.")
    details: list[dict[str, Any]] = Field(
        default_factory=list, description="Typed details (`@type`); cinegen sends none yet."
    )


class GoogleError(BaseModel):
    """Every error of every dialect: `{"error": {"code", "message", "status"}}`."""

    error: GoogleErrorStatus


ERRORS: Mapping[int, str] = {
    400: "INVALID_ARGUMENT (a malformed body, parameter or value the Veo rules refuse) or "
    "FAILED_PRECONDITION (the resource is not in a state that allows the request).",
    401: "UNAUTHENTICATED: the server has API keys and the request presented none.",
    403: "PERMISSION_DENIED: the API key is not valid, expired or revoked, is not an admin key "
    "where one is needed, or the server listens beyond loopback with no key and answers no one.",
    404: "NOT_FOUND: no such API version, model, operation, video or file (for this key).",
    413: "INVALID_ARGUMENT: the body, a form field or an uploaded file is over the limit.",
    416: "OUT_OF_RANGE: the `Range` asks for bytes past the end of the file.",
    429: "RESOURCE_EXHAUSTED: this API key is over a limit (concurrent operations, seconds of "
    "video a day, requests or polls a minute); `Retry-After` says when to try again.",
    503: "UNAVAILABLE: the disk is full, an input is gone, or too many image downloads are "
    "in progress; trying again later may work.",
}
DEFAULT_ERROR = "Any other failure, in the same envelope: 500 INTERNAL is a bug (no trace sent)."
AUTH = (401, 403)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each code's meaning, all in the Google error envelope.

    The `default` entry also keeps FastAPI from listing a 422 no route answers (a request
    validation error is a 400 here)."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": GoogleError, "description": ERRORS[code]} for code in sorted(set(codes))
    }
    responses["default"] = {"model": GoogleError, "description": DEFAULT_ERROR}
    return responses


def binary(*media_types: str) -> dict[str, Any]:
    """A 200 whose body is a file of one of `media_types` (besides the JSON ones)."""
    schema = {"type": "string", "format": "binary"}
    return {"content": {media: {"schema": schema} for media in media_types}}


# ---------------------------------------------------------------------------- parameters


def parameter(
    where: str, name: str, description: str, schema: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": dict(schema or {"type": "string"}),
    }


def version_path(versions: Sequence[str]) -> Any:
    """`Path()` of a route's `{version}` that FastAPI documents from the signature."""
    return Path(description=_VERSION, json_schema_extra={"enum": list(versions)})


def version_parameter(versions: Sequence[str]) -> dict[str, Any]:
    """The same, for a route that reads its path parameters from the request itself."""
    return parameter("path", "version", _VERSION, {"type": "string", "enum": list(versions)})


_VERSION = "The API version; any other is 404 NOT_FOUND."
MODEL = (
    "A model id, with or without `models/` (e.g. `veo-3.1-generate-preview`), or an alias; "
    "GET /{version}/models lists them."
)
MODEL_EXAMPLES = list(MODELS)
API_KEY = parameter(
    "header",
    "x-goog-api-key",
    "The API key, needed once the server has any (`cinegen keys create`). Also taken as "
    "`?key=` or `Authorization: Bearer <key>`.",
)
RANGE = parameter(
    "header", "Range", "One byte range (`bytes=0-1023`, `bytes=-500`): a 206 with those bytes."
)


PROMPT = "A paper boat drifts down a rain-soaked street at dusk, neon reflections."
PREDICT_EXAMPLE = {"instances": [{"prompt": PROMPT}], "parameters": {"durationSeconds": 8}}


def model_path() -> Any:
    return Path(description=MODEL, examples=MODEL_EXAMPLES)


# -------------------------------------------------------------------------------- bodies


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema by its wire (alias) names, its `$defs` written in place.

    A `$ref` to `#/$defs/...` in an operation would resolve against the whole document, not
    the schema it sits in; inlining keeps each body self-contained (no wire model nests
    itself, so this ends)."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**inline(defs[ref.removeprefix("#/$defs/")]), **inline(rest)}
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def body(
    model: type[BaseModel],
    *,
    example: Mapping[str, Any] | None = None,
    form: Mapping[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """A required JSON body of `model` (with a valid `example`); with `form`, also that
    multipart / urlencoded one."""
    json_body: dict[str, Any] = {"schema": json_schema(model)}
    if example is not None:
        json_body["example"] = dict(example)
    content: dict[str, Any] = {"application/json": json_body}
    if form is not None:
        content["multipart/form-data"] = {"schema": dict(form)}
        content["application/x-www-form-urlencoded"] = {"schema": dict(form)}
    request_body: dict[str, Any] = {"required": True, "content": content}
    if description:
        request_body["description"] = description
    return request_body


def extra(
    parameters: Iterable[dict[str, Any]] = (), request_body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `openapi_extra=` of a route: parameters FastAPI does not see, and its body."""
    out: dict[str, Any] = {"parameters": list(parameters)}
    if request_body is not None:
        out["requestBody"] = request_body
    return out
