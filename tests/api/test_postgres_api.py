"""The API on PostgreSQL (issue 25): the real google-genai SDK drives an in-process app on a
fresh PostgreSQL database (`pg_app`, tests/conftest.py) through create, poll, download, cancel,
delete, API keys and webhook registration; and a subset of the Gemini route tests
(tests/api/test_gemini_routes.py) runs again here, on PostgreSQL, with their own assertions."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from google import genai
from google.genai import types

from cinegen.api.auth import create_key
from tests.api.test_gemini_routes import (
    client,
    test_cancel_stops_a_running_operation,
    test_delete_removes_operation_and_files,
    test_download_supports_range,
    test_list_operations_pages_newest_first,
    test_text_to_video_contract,
)
from tests.support.app import InProcessServer, _PortalASGITransport, in_process
from tests.support.postgres import PostgresServer

# Collected here too: the route tests above, on this module's `app_server` (PostgreSQL).
__all__ = [
    "client",
    "test_cancel_stops_a_running_operation",
    "test_delete_removes_operation_and_files",
    "test_download_supports_range",
    "test_list_operations_pages_newest_first",
    "test_text_to_video_contract",
]

MODEL = "veo-3.1-fast-generate-preview"
CONFIG = types.GenerateVideosConfig(duration_seconds=4)
URI = "https://example.com/hooks/cinegen"


@pytest.fixture(scope="module")
def app_server(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    """The route tests' app, on PostgreSQL: not `pg_app`, whose admin key would make their
    keyless requests fail (xdist may run them in any order)."""
    url = postgres.create_database()
    with in_process(tmp_path_factory.mktemp("routes"), workers=2, database_url=url) as app:
        yield app


@pytest.fixture(scope="module")
def admin_key(pg_app: InProcessServer) -> str:
    key = create_key(pg_app.db, "admin", admin=True)[1]
    pg_app.runtime.auth.forget()  # the app knows keys exist now: every request needs one
    return key


def sdk(app: InProcessServer, key: str) -> genai.Client:
    """google-genai over the in-process app: its httpx client gets the app's transport."""
    options = types.HttpOptions(
        base_url=app.url,
        client_args={"transport": _PortalASGITransport(app.app, app.portal)},
    )
    return genai.Client(api_key=key, http_options=options)


def http(app: InProcessServer, key: str) -> httpx.Client:
    return app.client(headers={"x-goog-api-key": key})


def test_sdk_create_poll_download_delete(pg_app: InProcessServer, admin_key: str) -> None:
    client = sdk(pg_app, admin_key)
    operation = client.models.generate_videos(
        model=MODEL, source=types.GenerateVideosSource(prompt="a fox on PostgreSQL"), config=CONFIG
    )
    while not operation.done:
        operation = client.operations.get(operation)
    assert operation.error is None and operation.response is not None
    [generated] = operation.response.generated_videos
    data = client.files.download(file=generated)
    assert data[4:8] == b"ftyp" and len(data) > 10_000
    with http(pg_app, admin_key) as h:
        listed = h.get("/v1beta/operations", params={"pageSize": 50}).json()["operations"]
        assert operation.name in [op["name"] for op in listed]
        assert h.delete(f"/v1beta/{operation.name}").status_code == 200
        assert h.get(f"/v1beta/{operation.name}").status_code == 404
        assert h.get(generated.video.uri).status_code == 404


def test_sdk_cancel_of_a_running_operation(pg_app: InProcessServer, admin_key: str) -> None:
    client = sdk(pg_app, admin_key)
    operation = client.models.generate_videos(
        model=MODEL,
        source=types.GenerateVideosSource(prompt="a long 1080p shot"),
        config=types.GenerateVideosConfig(resolution="1080p"),
    )
    with http(pg_app, admin_key) as h:
        assert h.post(f"/v1beta/{operation.name}:cancel").status_code == 200
    while not operation.done:
        operation = client.operations.get(operation)
    assert operation.error is not None and operation.error["code"] == 1


def test_keys_over_http(pg_app: InProcessServer, admin_key: str) -> None:
    """An admin makes a key with limits, changes and deletes it; the key works until then."""
    with http(pg_app, admin_key) as h:
        made = h.post("/v1beta/cinegen/keys", json={"name": "ci", "requestsPerMinute": 100})
        assert made.status_code == 200, made.text
        key, key_id = made.json()["key"], made.json()["id"]
        assert key_id in [k["id"] for k in h.get("/v1beta/cinegen/keys").json()["keys"]]
        changed = h.patch(f"/v1beta/cinegen/keys/{key_id}", json={"maxConcurrent": 3})
        assert changed.status_code == 200 and changed.json()["maxConcurrent"] == 3
        with http(pg_app, key) as mine:
            assert mine.get("/v1beta/operations").status_code == 200  # counted on PostgreSQL
        assert h.delete(f"/v1beta/cinegen/keys/{key_id}").status_code == 200
    with http(pg_app, key) as mine:
        assert mine.get("/v1beta/operations").status_code in (401, 403)


def test_sdk_webhooks_registration(pg_app: InProcessServer, admin_key: str) -> None:
    client = sdk(pg_app, admin_key)
    created = client.webhooks.create(uri=URI, subscribed_events=["video.generated"], name="pg")
    assert created.id and created.new_signing_secret.startswith("whsec_")
    assert created.id in [w.id for w in client.webhooks.list(page_size=10).webhooks]
    updated = client.webhooks.update(created.id, name="pg2", update_mask="name")
    assert (updated.name, updated.state) == ("pg2", "enabled")
    client.webhooks.delete(created.id)
    with http(pg_app, admin_key) as h:
        assert h.get(f"/v1beta/webhooks/{created.id}").status_code == 404
