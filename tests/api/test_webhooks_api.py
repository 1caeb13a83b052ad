"""The Gemini API's WebhookService (`/{v1beta|v1}/webhooks…`, spec gemini-webhooks.md §2):
every method over HTTP, tenancy between keys, the secret shown once and stored encrypted,
rotation, ping's outbox row; then the real google-genai SDKs (2.34 in this venv, 3.6.1 in
its own) against `cinegen serve`.

Webhook URIs point at 127.0.0.1 port 1 over https: the SSRF guard refuses loopback, so no
delivery attempt ever connects anywhere."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types
from sqlalchemy import select

from cinegen.service.webhooks import MAX_PREVIOUS_SECRETS, MAX_WEBHOOKS, WebhookService
from cinegen.store.db import Database, utcnow, webhook_events, webhooks
from tests.api.vertex.support import GENAI3_VERSION, genai3_python  # noqa: F401
from tests.support.app import InProcessServer, in_process, settings_for
from tests.support.server import ServerProcess, create_key

URI = "https://127.0.0.1:1/hook"
EVENTS = ["video.generated"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with in_process(tmp_path_factory.mktemp("webhooks"), workers=0) as app:
        yield app


@pytest.fixture(scope="module")
def key_a(server: InProcessServer) -> str:
    return server.add_key("a")


@pytest.fixture(scope="module")
def key_b(server: InProcessServer) -> str:
    return server.add_key("b")


@pytest.fixture
def a(server: InProcessServer, key_a: str) -> Iterator[httpx.Client]:
    with server.client(headers={"x-goog-api-key": key_a}) as client:
        yield client


@pytest.fixture
def b(server: InProcessServer, key_b: str) -> Iterator[httpx.Client]:
    with server.client(headers={"x-goog-api-key": key_b}) as client:
        yield client


def create(client: httpx.Client, version: str = "v1beta", **body: Any) -> dict[str, Any]:
    body = {"uri": URI, "subscribed_events": EVENTS, **body}
    response = client.post(f"/{version}/webhooks", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    created: dict[str, Any] = response.json()
    return created


def error_of(response: httpx.Response, code: int, status: str) -> str:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status, error
    message: str = error["message"]
    return message


def rfc3339(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------ create/get


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_create_answers_the_resource_in_snake_case_with_its_secret_once(
    a: httpx.Client, version: str
) -> None:
    created = create(a, version, name="MyVideoHook")
    assert set(created) == {
        "id",
        "name",
        "uri",
        "subscribed_events",
        "state",
        "new_signing_secret",
        "signing_secrets",
        "create_time",
        "update_time",
    }
    assert len(created["id"]) == 36 and created["id"].isalnum() and created["id"].islower()
    assert (created["name"], created["uri"], created["state"]) == ("MyVideoHook", URI, "enabled")
    assert created["subscribed_events"] == EVENTS
    secret = created["new_signing_secret"]
    assert secret.startswith("whsec_") and len(secret) == 6 + 44
    assert created["signing_secrets"] == [{"truncated_secret": f"whsec_...{secret[-4:]}"}]
    assert abs(rfc3339(created["create_time"]) - utcnow()) < timedelta(minutes=1)
    got = a.get(f"/{version}/webhooks/{created['id']}")
    assert got.status_code == 200, got.text
    assert got.json() == {k: v for k, v in created.items() if k != "new_signing_secret"}


def test_create_takes_camel_case_and_ignores_output_fields(a: httpx.Client) -> None:
    body = {"uri": URI, "subscribedEvents": ["batch.cancelled"], "state": "disabled", "id": "x"}
    response = a.post("/v1beta/webhooks", json=body)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["subscribed_events"] == ["batch.cancelled"]
    assert created["state"] == "enabled" and created["id"] != "x"
    assert "name" not in created


def test_the_secret_is_stored_encrypted(server: InProcessServer, a: httpx.Client) -> None:
    created = create(a)
    with server.db.engine.connect() as conn:
        row = conn.execute(select(webhooks).where(webhooks.c.id == created["id"])).one()
    stored = json.dumps(row.signing_secrets)
    assert "whsec_" + created["new_signing_secret"][6:] not in stored
    assert created["new_signing_secret"][6:20] not in stored
    service: WebhookService = server.app.state.webhooks
    assert (
        service.box.decrypt(row.signing_secrets[0]["encrypted"]) == (created["new_signing_secret"])
    )


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"subscribed_events": EVENTS}, "uri"),
        ({"uri": URI}, "subscribed_events"),
        ({"uri": URI, "subscribed_events": []}, "subscribed_events"),
        ({"uri": URI, "subscribed_events": ["video.failed"]}, "video.failed"),
        ({"uri": "http://hooks.example/x", "subscribed_events": EVENTS}, "https"),
        ({"uri": "ftp://hooks.example/x", "subscribed_events": EVENTS}, "https"),
        ({"uri": "not a url", "subscribed_events": EVENTS}, "https"),
        ({"uri": 5, "subscribed_events": EVENTS}, "uri"),
    ],
)
def test_create_refuses_bad_bodies_with_400(
    a: httpx.Client, body: dict[str, Any], word: str
) -> None:
    assert word in error_of(a.post("/v1beta/webhooks", json=body), 400, "INVALID_ARGUMENT")


def test_http_is_allowed_to_a_host_in_fetch_allow_hosts(tmp_path: Path) -> None:
    allow = "127.0.0.1,hooks.test"
    with in_process(tmp_path, workers=0, fetch_allow_hosts=allow) as app, app.client() as client:
        for uri in ("http://127.0.0.1:8/x", "http://hooks.test/x"):
            response = client.post(
                "/v1beta/webhooks", json={"uri": uri, "subscribed_events": EVENTS}
            )
            assert response.status_code == 200, response.text
        refused = client.post(
            "/v1beta/webhooks", json={"uri": "http://other.test/", "subscribed_events": EVENTS}
        )
        error_of(refused, 400, "INVALID_ARGUMENT")


def test_an_unknown_version_is_404(a: httpx.Client) -> None:
    error_of(a.get("/v1alpha/webhooks"), 404, "NOT_FOUND")


def test_legacy_webhook_id_is_honoured_and_a_taken_one_is_409(a: httpx.Client) -> None:
    response = a.post(
        "/v1beta/webhooks",
        params={"webhook_id": "legacy-hook-1"},
        json={"uri": URI, "subscribed_events": EVENTS},
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "legacy-hook-1"
    again = a.post(
        "/v1beta/webhooks",
        params={"webhook_id": "legacy-hook-1"},
        json={"uri": URI, "subscribed_events": EVENTS},
    )
    error_of(again, 409, "ALREADY_EXISTS")
    bad = a.post(
        "/v1beta/webhooks",
        params={"webhook_id": "Bad/Id"},
        json={"uri": URI, "subscribed_events": EVENTS},
    )
    error_of(bad, 400, "INVALID_ARGUMENT")


def test_a_tenant_has_at_most_the_limit(tmp_path: Path) -> None:
    with in_process(tmp_path, workers=0) as app, app.client() as client:
        for _ in range(MAX_WEBHOOKS):
            create(client)
        refused = client.post("/v1beta/webhooks", json={"uri": URI, "subscribed_events": EVENTS})
        assert str(MAX_WEBHOOKS) in error_of(refused, 400, "FAILED_PRECONDITION")


# ---------------------------------------------------------------------------------- list


def test_list_pages_oldest_first_with_a_token(server: InProcessServer) -> None:
    key = server.add_key("lister")
    with server.client(headers={"x-goog-api-key": key}) as client:
        ids = [create(client)["id"] for _ in range(3)]
        first = client.get("/v1/webhooks", params={"page_size": 2})
        assert first.status_code == 200, first.text
        page = first.json()
        assert [w["id"] for w in page["webhooks"]] == ids[:2]
        assert all("new_signing_secret" not in w for w in page["webhooks"])
        second = client.get(
            "/v1/webhooks", params={"page_size": 2, "page_token": page["next_page_token"]}
        ).json()
        assert [w["id"] for w in second["webhooks"]] == ids[2:]
        assert "next_page_token" not in second
        everything = client.get("/v1beta/webhooks", params={"pageSize": 5000}).json()
        assert [w["id"] for w in everything["webhooks"]] == ids
        error_of(client.get("/v1/webhooks", params={"page_size": -1}), 400, "INVALID_ARGUMENT")
        error_of(client.get("/v1/webhooks", params={"page_size": "x"}), 400, "INVALID_ARGUMENT")
        error_of(client.get("/v1/webhooks", params={"page_token": "!!"}), 400, "INVALID_ARGUMENT")


# -------------------------------------------------------------------------------- tenancy


def test_one_key_never_sees_another_keys_webhooks(a: httpx.Client, b: httpx.Client) -> None:
    hook = create(a)["id"]
    assert hook not in [w["id"] for w in b.get("/v1beta/webhooks").json().get("webhooks", [])]
    path = f"/v1beta/webhooks/{hook}"
    for response in (
        b.get(path),
        b.patch(path, json={"name": "mine"}),
        b.delete(path),
        b.post(path + ":ping", json={}),
        b.post(path + ":rotateSigningSecret", json={}),
        b.post(path + "/rotate_secret", json={}),
    ):
        error_of(response, 404, "NOT_FOUND")
    assert a.get(path).json()["signing_secrets"] == create_secrets_of(a, hook)


def create_secrets_of(client: httpx.Client, hook: str) -> list[dict[str, str]]:
    secrets: list[dict[str, str]] = client.get(f"/v1beta/webhooks/{hook}").json()["signing_secrets"]
    assert len(secrets) == 1  # b's rotations changed nothing
    return secrets


def test_without_a_key_is_401(server: InProcessServer, key_a: str) -> None:
    """Once a key exists (a server with none is open to loopback, by design)."""
    with server.client() as client:
        error_of(client.get("/v1beta/webhooks"), 401, "UNAUTHENTICATED")


# -------------------------------------------------------------------------------- update


def test_update_without_a_mask_sets_the_fields_given(a: httpx.Client) -> None:
    created = create(a, name="keep")
    response = a.patch(
        f"/v1beta/webhooks/{created['id']}",
        json={"subscribed_events": ["batch.succeeded", "video.generated"]},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["subscribed_events"] == ["batch.succeeded", "video.generated"]
    assert (updated["name"], updated["uri"]) == ("keep", URI)
    assert "new_signing_secret" not in updated
    assert rfc3339(updated["update_time"]) > rfc3339(created["update_time"])


def test_update_with_a_mask_sets_only_its_paths(a: httpx.Client) -> None:
    created = create(a, name="old")
    response = a.patch(
        f"/v1/webhooks/{created['id']}",
        params={"update_mask": "uri,state"},
        json={"uri": "https://127.0.0.1:1/new", "name": "ignored", "state": "disabled"},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["uri"], updated["name"], updated["state"]) == (
        "https://127.0.0.1:1/new",
        "old",
        "disabled",
    )
    camel = a.patch(
        f"/v1/webhooks/{created['id']}",
        params={"updateMask": "subscribedEvents,state"},
        json={"subscribedEvents": ["batch.failed"], "state": "enabled"},
    )
    assert camel.status_code == 200, camel.text
    assert camel.json()["subscribed_events"] == ["batch.failed"]
    assert camel.json()["state"] == "enabled"


@pytest.mark.parametrize(
    ("mask", "body", "word"),
    [
        ("secret", {}, "update_mask"),
        ("uri,signing_secrets", {"uri": URI}, "update_mask"),
        ("uri", {}, "uri"),
        ("subscribed_events", {"subscribed_events": []}, "subscribed_events"),
        (None, {"subscribed_events": ["nope"]}, "nope"),
        (None, {"state": "disabled_due_to_failed_deliveries"}, "state"),
        (None, {"uri": "http://hooks.example/"}, "https"),
    ],
)
def test_update_refuses_bad_masks_and_values_with_400(
    a: httpx.Client, mask: str | None, body: dict[str, Any], word: str
) -> None:
    hook = create(a)["id"]
    params = {"update_mask": mask} if mask else {}
    response = a.patch(f"/v1beta/webhooks/{hook}", params=params, json=body)
    assert word in error_of(response, 400, "INVALID_ARGUMENT")
    assert a.get(f"/v1beta/webhooks/{hook}").json()["subscribed_events"] == EVENTS


def test_unknown_id_is_404(a: httpx.Client) -> None:
    for response in (
        a.get("/v1beta/webhooks/nope"),
        a.patch("/v1beta/webhooks/nope", json={"name": "x"}),
        a.delete("/v1beta/webhooks/nope"),
        a.post("/v1beta/webhooks/nope:ping"),
    ):
        error_of(response, 404, "NOT_FOUND")


# ------------------------------------------------------------------------- delete / ping


def test_delete_answers_an_empty_object_and_drops_pending_pings(
    server: InProcessServer, a: httpx.Client
) -> None:
    hook = create(a)["id"]
    assert a.post(f"/v1beta/webhooks/{hook}:ping").json() == {}
    response = a.delete(f"/v1/webhooks/{hook}")
    assert response.status_code == 200 and response.json() == {}
    assert response.headers["content-type"] == "application/json"
    error_of(a.get(f"/v1/webhooks/{hook}"), 404, "NOT_FOUND")
    with server.db.engine.connect() as conn:
        states = conn.execute(
            select(webhook_events.c.state).where(webhook_events.c.webhook_id == hook)
        ).all()
    assert [s for (s,) in states] == ["failed"]


@pytest.mark.parametrize("body", [None, b"{}"])
def test_ping_queues_one_single_attempt_ping_event(
    server: InProcessServer, a: httpx.Client, body: bytes | None
) -> None:
    hook = create(a, subscribed_events=["batch.failed"])["id"]
    response = a.post(f"/v1beta/webhooks/{hook}:ping", content=body)
    assert response.status_code == 200 and response.json() == {}
    with server.db.engine.connect() as conn:
        rows = conn.execute(select(webhook_events).where(webhook_events.c.webhook_id == hook))
        events = [row._asdict() for row in rows]
    assert len(events) == 1
    event = events[0]
    assert event["event_type"] == "webhook.ping" and event["single_attempt"] is True
    assert (event["kind"], event["target_uri"]) == ("static", URI)
    assert event["msg_id"].startswith("msg_")
    payload = json.loads(event["payload"])
    assert payload["type"] == "webhook.ping" and payload["version"] == "v1"
    assert payload["data"] == {"id": hook}
    rfc3339(payload["timestamp"])


# -------------------------------------------------------------------------------- rotate


def test_rotation_keeps_the_previous_secret_for_24_hours(a: httpx.Client) -> None:
    created = create(a)
    hook = created["id"]
    response = a.post(
        f"/v1beta/webhooks/{hook}:rotateSigningSecret",
        json={"revocation_behavior": "revoke_previous_secrets_after_h24"},
    )
    assert response.status_code == 200, response.text
    secret = response.json()["secret"]
    assert set(response.json()) == {"secret"} and secret.startswith("whsec_")
    assert secret != created["new_signing_secret"]
    listed = a.get(f"/v1beta/webhooks/{hook}").json()["signing_secrets"]
    assert listed[0] == {"truncated_secret": f"whsec_...{secret[-4:]}"}
    old = listed[1]
    assert old["truncated_secret"] == f"whsec_...{created['new_signing_secret'][-4:]}"
    assert abs(rfc3339(old["expire_time"]) - (utcnow() + timedelta(hours=24))) < timedelta(
        minutes=1
    )
    # the default behaviour, by the guide's alias path with an empty body: three secrets
    again = a.post(f"/v1/webhooks/{hook}/rotate_secret")
    assert again.status_code == 200, again.text
    assert len(a.get(f"/v1beta/webhooks/{hook}").json()["signing_secrets"]) == 3


def test_rotating_in_a_loop_keeps_only_the_newest_previous_secrets(a: httpx.Client) -> None:
    hook = create(a)["id"]
    answers = [a.post(f"/v1beta/webhooks/{hook}:rotateSigningSecret").json()["secret"]]
    answers += [a.post(f"/v1beta/webhooks/{hook}:rotateSigningSecret").json()["secret"]]
    for _ in range(MAX_PREVIOUS_SECRETS + 2):
        answers.append(a.post(f"/v1beta/webhooks/{hook}:rotateSigningSecret").json()["secret"])
    listed = a.get(f"/v1beta/webhooks/{hook}").json()["signing_secrets"]
    newest = answers[::-1][: MAX_PREVIOUS_SECRETS + 1]
    assert [s["truncated_secret"] for s in listed] == [f"whsec_...{x[-4:]}" for x in newest]


def test_rotation_can_revoke_the_previous_secrets_at_once(a: httpx.Client) -> None:
    hook = create(a)["id"]
    a.post(f"/v1beta/webhooks/{hook}:rotateSigningSecret", json={})
    response = a.post(
        f"/v1beta/webhooks/{hook}/rotate_secret",
        json={"revocationBehavior": "REVOKE_PREVIOUS_SECRETS_IMMEDIATELY"},
    )
    assert response.status_code == 200, response.text
    secret = response.json()["secret"]
    listed = a.get(f"/v1beta/webhooks/{hook}").json()["signing_secrets"]
    assert listed == [{"truncated_secret": f"whsec_...{secret[-4:]}"}]


def test_rotation_refuses_an_unknown_behaviour(a: httpx.Client) -> None:
    hook = create(a)["id"]
    response = a.post(
        f"/v1beta/webhooks/{hook}:rotateSigningSecret", json={"revocation_behavior": "never"}
    )
    assert "revocation_behavior" in error_of(response, 400, "INVALID_ARGUMENT")


# ------------------------------------------------------------------ the google-genai SDKs


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    process = ServerProcess(tmp_path_factory.mktemp("webhooks-serve"))
    key = create_key(process)
    process.start(timeout=120)
    try:
        yield process, key
    finally:
        process.stop()


def ping_count(process: ServerProcess, hook: str) -> int:
    db = Database(settings_for(process.data_dir).resolved_database_url)
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(
                select(webhook_events.c.id).where(
                    webhook_events.c.webhook_id == hook,
                    webhook_events.c.event_type == "webhook.ping",
                )
            ).all()
    finally:
        db.engine.dispose()
    return len(rows)


def test_google_genai_2_webhooks_methods(served: tuple[ServerProcess, str]) -> None:
    process, key = served
    options = types.HttpOptions(base_url=process.url, client_args={"trust_env": False})
    client = genai.Client(api_key=key, http_options=options)
    created = client.webhooks.create(uri=URI, subscribed_events=EVENTS, name="sdk2")
    assert created.id and created.new_signing_secret.startswith("whsec_")
    assert created.signing_secrets[0].truncated_secret == (
        f"whsec_...{created.new_signing_secret[-4:]}"
    )
    listed = client.webhooks.list(page_size=10)
    assert created.id in [w.id for w in listed.webhooks]
    got = client.webhooks.get(created.id)
    assert (got.name, got.uri, got.state) == ("sdk2", URI, "enabled")
    updated = client.webhooks.update(
        created.id, subscribed_events=["batch.succeeded"], update_mask="subscribed_events"
    )
    assert list(updated.subscribed_events) == ["batch.succeeded"]
    client.webhooks.ping(created.id)
    assert ping_count(process, created.id) == 1
    rotated = client.webhooks.rotate_signing_secret(
        created.id, revocation_behavior="revoke_previous_secrets_after_h24"
    )
    assert rotated.secret.startswith("whsec_")
    assert len(client.webhooks.get(created.id).signing_secrets) == 2
    client.webhooks.delete(created.id)
    with pytest.raises(Exception) as missing:  # the SDK's own APIStatusError (a private module)
        client.webhooks.get(created.id)
    assert getattr(missing.value, "status_code", None) == 404, repr(missing.value)


SDK3_DRIVER = """
import json, os, sys
from google import genai

client = genai.Client(api_key=os.environ["GEMINI_API_KEY"], http_options={"base_url": sys.argv[1]})
uri, events = sys.argv[2], ["video.generated"]
created = client.webhooks.create(uri=uri, subscribed_events=events, name="sdk3")
out = {"sdk": genai.__version__, "id": created.id, "secret": created.new_signing_secret}
out["listed"] = [w.id for w in client.webhooks.list().webhooks]
out["got"] = client.webhooks.get(created.id).name
updated = client.webhooks.update(created.id, state="disabled")
out["state"] = updated.state
client.webhooks.ping(created.id)
out["rotated"] = client.webhooks.rotate_signing_secret(
    created.id, revocation_behavior="revoke_previous_secrets_immediately"
).secret
out["secrets"] = [s.truncated_secret for s in client.webhooks.get(created.id).signing_secrets]
client.webhooks.delete(created.id)
try:
    client.webhooks.get(created.id)
except Exception as exc:
    out["after_delete"] = getattr(exc, "status_code", None)
print("RESULT " + json.dumps(out))
"""


def test_google_genai_3_webhooks_methods(
    served: tuple[ServerProcess, str],
    genai3_python: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    process, key = served
    driver = tmp_path / "driver.py"
    driver.write_text(SDK3_DRIVER)
    env = {"GEMINI_API_KEY": key, "PATH": "/usr/bin:/bin", "NO_PROXY": "*"}
    run = subprocess.run(
        [str(genai3_python), str(driver), process.url, URI],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr + process.log()[-4000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert out["sdk"] == GENAI3_VERSION
    assert out["secret"].startswith("whsec_") and out["id"] in out["listed"]
    assert (out["got"], out["state"]) == ("sdk3", "disabled")
    assert out["secrets"] == [f"whsec_...{out['rotated'][-4:]}"]
    assert out["after_delete"] == 404
    assert ping_count(process, out["id"]) == 1
