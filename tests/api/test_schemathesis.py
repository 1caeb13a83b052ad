"""schemathesis fuzzes every operation /openapi.json documents, with the bodies it documents.

The app is the in-process one (tests/support/app.py) with no worker threads, so a create only
queues; one API key exists and every request presents it (the owner paths run). Each
operation gets at most `MAX_EXAMPLES` generated requests from a fixed seed, so CI sees the
same cases on every run. No answer may be a 5xx, and each must be one the schema documents
(status code, content type, and the error envelope's schema).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.app import InProcessServer, in_process

pytestmark = pytest.mark.xdist_group("schemathesis")

MAX_EXAMPLES = 25
_VERTEX = "/{version}/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}"
SEED = 20261207
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessServer, str]]:
    with in_process(tmp_path_factory.mktemp("schemathesis"), workers=0) as server:
        yield server, server.add_key("schemathesis")


def _config(key: str) -> SchemathesisConfig:
    settings: dict[str, Any] = {
        "seed": SEED,
        # No example database: the same cases each run, and nothing written to the tree.
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        # Every request carries the key; a model the catalog has, so bodies reach the parser.
        "parameters": {"header.x-goog-api-key": key, "path.model": "veo-3.1-generate-preview"},
    }
    return SchemathesisConfig.from_dict(settings)


@pytest.fixture
def api_schema(keyed_app: tuple[InProcessServer, str]) -> Any:
    server, key = keyed_app
    return schemathesis.openapi.from_asgi("/openapi.json", server.app, config=_config(key))


schema = schemathesis.pytest.from_fixture("api_schema")

# The operations that read a body; the others must document none.
BODIES = {
    ("post", "/{version}/models/{model}:predictLongRunning"),
    ("post", "/{version}/publishers/{publisher}/models/{model}:predictLongRunning"),
    ("post", _VERTEX + ":predictLongRunning"),
    ("post", "/{version}/publishers/{publisher}/models/{model}:fetchPredictOperation"),
    ("post", _VERTEX + ":fetchPredictOperation"),
    ("post", "/v1/videos"),
    ("post", "/v1/videos/{video_id}/remix"),
    ("post", "/v1beta/cinegen/keys"),
    ("post", "/v1beta/cinegen:verify"),
    ("patch", "/v1beta/cinegen/keys/{key_id}"),
    ("post", "/{version}/webhooks"),
    ("patch", "/{version}/webhooks/{webhook_id}"),
    ("post", "/{version}/webhooks/{webhook_id}:rotateSigningSecret"),
    ("post", "/{version}/webhooks/{webhook_id}/rotate_secret"),
}


def _openapi(server: InProcessServer) -> dict[str, Any]:
    with server.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_openapi_is_valid_3_1(keyed_app: tuple[InProcessServer, str]) -> None:
    document = _openapi(keyed_app[0])
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def _api_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path. FastAPI 0.165 wraps each included router
    (`_IncludedRouter`: its `original_router`, its `include_context.prefix`); older versions
    copy the routes into the app's list."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif (inner := getattr(route, "original_router", None)) is not None:
            context = getattr(route, "include_context", None)
            yield from _api_routes(inner.routes, prefix + getattr(context, "prefix", ""))


def test_every_route_is_documented_with_its_body_and_errors(
    keyed_app: tuple[InProcessServer, str],
) -> None:
    server = keyed_app[0]
    paths = _openapi(server)["paths"]
    documented = {(method, path) for path, ops in paths.items() for method in ops}
    routes = list(_api_routes(server.app.routes))
    assert len(routes) >= 40, len(routes)  # the walk reached the included routers
    for path, route in routes:  # none hidden from the document
        path = re.sub(r":path}", "}", path)
        assert {(m.lower(), path) for m in route.methods} <= documented, path
    with_body = {(m, p) for p, ops in paths.items() for m, op in ops.items() if "requestBody" in op}
    assert with_body == BODIES
    envelope = {"$ref": "#/components/schemas/GoogleError"}
    for path, ops in paths.items():
        for method, op in ops.items():
            errors = {code: r for code, r in op["responses"].items() if not code.startswith("2")}
            for code, answer in errors.items():
                assert answer["content"]["application/json"]["schema"] == envelope, (
                    method,
                    path,
                    code,
                )


@schema.parametrize()
def test_no_route_answers_5xx(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


@pytest.mark.parametrize(
    "name", ["ü" * 200, "a%00b.js", "x" * 5000 + ".js"], ids=["400-bytes", "nul", "5000-bytes"]
)
def test_a_static_name_no_file_can_have_is_404(
    keyed_app: tuple[InProcessServer, str], name: str
) -> None:
    """A name over the file system's limit, or with a NUL, was a 500 (found by schemathesis)."""
    with keyed_app[0].client() as client:
        response = client.get(f"/static/{name}")
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"
