"""Webhook deliveries of finished operations (spec gemini-webhooks.md §4, §5, §7 #7/#8/#13),
received on loopback and verified as a receiver would: static ones with the `standardwebhooks`
package (also with two secrets during a rotation), dynamic ones with PyJWT's `PyJWKClient`
against the server's own `/.well-known/jwks.json`."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from standardwebhooks import Webhook as StandardWebhook

from cinegen.core.errors import Internal
from cinegen.service.webhooks import WebhookFields, WebhookService
from cinegen.store.outbox import Outbox
from tests.helpers import submit, text_request, wait_done
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.engines import ScriptedEngine
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess

MODEL = "veo-3.1-generate-preview"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _app(tmp_path: Path, engine: Any = None, **settings: Any) -> Any:
    settings.setdefault("fetch_allow_hosts", "127.0.0.1")
    settings.setdefault("webhook_retry_scale", 0.001)
    settings.setdefault("workers", 1)
    return in_process(
        tmp_path / "data", engines={"preview": engine or ScriptedEngine()}, **settings
    )


def _webhook(app: InProcessServer, uri: str, events: list[str] | None = None) -> tuple[str, str]:
    """(id, secret) of a new static webhook of the anonymous owner."""
    service = WebhookService(app.db, app.settings)
    record, secret = service.create(
        None, WebhookFields(uri=uri, subscribed_events=events or ["video.generated"])
    )
    return record.id, secret


def _verified(secret: str, delivery: Any) -> dict[str, Any]:
    return StandardWebhook(secret).verify(delivery.body, delivery.headers)


def test_static_delivery_verifies_and_points_at_the_video(
    tmp_path: Path, receiver: Receiver
) -> None:
    with _app(tmp_path) as app, app.client() as client:
        hook_id, secret = _webhook(app, receiver.url())
        _webhook(app, receiver.url("/other"), ["batch.succeeded"])  # not subscribed: nothing
        name = submit(client, text_request("a red kite"))
        done = wait_done(client, name)
        [delivery] = receiver.wait_for(1)
        event = _verified(secret, delivery)
        uri = done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
        file_id = uri.split("/files/")[1].split(":")[0]
        assert event["type"] == "video.generated" and event["version"] == "v1"
        assert event["data"]["id"] == name
        assert event["data"]["file_name"] == f"files/{file_id}"
        assert event["data"]["output_file_uri"].endswith(
            f"/v1beta/files/{file_id}:download?alt=media"
        )
        assert "user_metadata" not in event
        assert delivery.headers["webhook-id"].startswith("msg_")
        assert delivery.path == "/hook"
        rows = Outbox(app.db).events_page(hook_id, None, 10)
        assert [(r.state, r.msg_id) for r in rows] == [
            ("delivered", delivery.headers["webhook-id"])
        ]
        assert receiver.connections == 1


def test_rotation_signs_with_both_secrets(tmp_path: Path, receiver: Receiver) -> None:
    with _app(tmp_path) as app, app.client() as client:
        hook_id, old = _webhook(app, receiver.url())
        new = WebhookService(app.db, app.settings).rotate(
            None, hook_id, "REVOKE_PREVIOUS_SECRETS_AFTER_H24"
        )
        wait_done(client, submit(client, text_request("a heron")))
        [delivery] = receiver.wait_for(1)
        signatures = delivery.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        assert _verified(old, delivery) == _verified(new, delivery)
        with pytest.raises(Exception, match="No matching signature"):
            StandardWebhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(
                delivery.body, delivery.headers
            )


def test_failure_and_cancel_are_video_generated_with_the_error(
    tmp_path: Path, receiver: Receiver
) -> None:
    engine = ScriptedEngine(error=Internal("the engine broke"))
    with _app(tmp_path, engine) as app, app.client() as client:
        _hook, secret = _webhook(app, receiver.url())
        failed = submit(client, text_request("a storm"))
        wait_done(client, failed)
        event = _verified(secret, receiver.wait_for(1)[0])
        assert event["type"] == "video.generated"
        assert event["data"] == {
            "id": failed,
            "error_code": "INTERNAL",
            "error_message": "the engine broke",
        }


def test_cancelled_queued_operation_is_announced(tmp_path: Path, receiver: Receiver) -> None:
    with _app(tmp_path, workers=0) as app, app.client() as client:
        _hook, secret = _webhook(app, receiver.url())
        name = submit(client, text_request("a slow boat"))
        assert client.post(f"/v1beta/{name}:cancel").status_code == 200
        event = _verified(secret, receiver.wait_for(1)[0])
        assert event["data"]["id"] == name
        assert event["data"]["error_code"] == "CANCELLED"


def test_videos_dialect_event_carries_the_video_id(tmp_path: Path, receiver: Receiver) -> None:
    with _app(tmp_path) as app, app.client() as client:
        _hook, secret = _webhook(app, receiver.url())
        created = client.post(
            "/v1/videos", json={"model": MODEL, "prompt": "a lighthouse", "seconds": "4"}
        )
        assert created.status_code == 200, created.text
        video = created.json()["id"]
        event = _verified(secret, receiver.wait_for(1, timeout=60)[0])
        assert event["data"]["id"] == video
        assert client.get(f"/v1/videos/{event['data']['id']}").json()["id"] == video


def test_dynamic_delivery_is_a_jwt_the_jwks_verifies(tmp_path: Path, receiver: Receiver) -> None:
    """A real server process, so that PyJWKClient fetches its JWKS over HTTP."""
    server = ServerProcess(
        tmp_path / "server", env_extra={"CINEGEN_FETCH_ALLOW_HOSTS": "127.0.0.1"}
    )
    server.start()
    try:
        import httpx

        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = text_request("a fox", resolution="720p")
            body["webhookConfig"] = {
                "uris": [receiver.url("/dynamic")],
                "user_metadata": {"job_id": "video_123"},
            }
            name = submit(client, body)
            wait_done(client, name)
        [delivery] = receiver.wait_for(1, timeout=60)
        token = delivery.headers["webhook-signature"]
        key = jwt.PyJWKClient(f"{server.url}/.well-known/jwks.json").get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=receiver.url("/dynamic"))
        envelope = json.loads(delivery.body)
        assert envelope["user_metadata"] == {"job_id": "video_123"}
        assert envelope["data"]["user_metadata"] == {"job_id": "video_123"}
        assert envelope["data"]["id"] == name
        assert claims["user_metadata"] == {"job_id": "video_123"}
        assert claims["data"] == envelope["data"] and claims["type"] == "video.generated"
        assert claims["jti"] == delivery.headers["webhook-id"]
        assert claims["iss"] == server.url
        digest = hashlib.sha256(delivery.body).digest()
        assert claims["body_sha256"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
        assert int(delivery.headers["webhook-timestamp"]) == claims["webhook_timestamp"]
    finally:
        server.stop()


def test_vertex_refuses_webhook_config(tmp_path: Path) -> None:
    with _app(tmp_path, workers=0) as app, app.client() as client:
        body = text_request("x")
        body["webhookConfig"] = {"uris": ["https://example.com/hook"]}
        response = client.post(
            f"/v1beta1/publishers/google/models/{MODEL}:predictLongRunning", json=body
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"] == (
            "webhook_config parameter is only supported in Gemini Developer API mode, "
            "not in Gemini Enterprise Agent Platform mode."
        )
        assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_ids_match_operation(tmp_path: Path, receiver: Receiver) -> None:
    """The event row carries the operation's id (the deliveries listing shows it)."""
    with _app(tmp_path) as app, app.client() as client:
        hook_id, _secret = _webhook(app, receiver.url())
        name = submit(client, text_request("a moth"))
        wait_done(client, name)
        receiver.wait_for(1)
        [row] = Outbox(app.db).events_page(hook_id, None, 10)
        assert row.operation_id == op_id(name)


def test_user_metadata_without_uris_goes_to_static_webhooks(
    tmp_path: Path, receiver: Receiver
) -> None:
    """§5.2: `webhookConfig` with metadata and no uris keeps the static routing."""
    with _app(tmp_path) as app, app.client() as client:
        _hook, secret = _webhook(app, receiver.url())
        body = text_request("an owl")
        body["webhookConfig"] = {"userMetadata": {"batch": 7}}
        wait_done(client, submit(client, body))
        event = _verified(secret, receiver.wait_for(1)[0])
        assert event["user_metadata"] == {"batch": 7}
        assert event["data"]["user_metadata"] == {"batch": 7}


def test_ping_is_signed_and_tried_once(tmp_path: Path) -> None:
    with Receiver(default=503) as receiver, _app(tmp_path) as app, app.client() as client:
        hook_id, secret = _webhook(app, receiver.url())
        assert client.post(f"/v1beta/webhooks/{hook_id}:ping").json() == {}
        event = _verified(secret, receiver.wait_for(1)[0])
        assert event["type"] == "webhook.ping" and event["data"] == {"id": hook_id}
        outbox = Outbox(app.db)
        [row] = _until(
            lambda: [e for e in outbox.events_page(hook_id, None, 5) if e.state != "pending"]
        )
        assert row.state == "failed" and row.attempts == 1 and row.last_status == 503
        assert len(receiver.requests) == 1
        # One failed ping does not disable the webhook.
        assert WebhookService(app.db, app.settings).get(None, hook_id).state == "enabled"


def _until(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_an_event_that_cannot_be_built_does_not_block_the_end(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cinegen.service import deliveries

    def broken(*_args: Any) -> dict[str, Any]:
        raise RuntimeError("a bug in the payload")

    monkeypatch.setattr(deliveries, "video_data", broken)
    with _app(tmp_path) as app, app.client() as client:
        hook_id, _secret = _webhook(app, receiver.url())
        done = wait_done(client, submit(client, text_request("a lark")))
        assert done["response"]["generateVideoResponse"]["generatedSamples"]
        assert Outbox(app.db).events_page(hook_id, None, 5) == []
