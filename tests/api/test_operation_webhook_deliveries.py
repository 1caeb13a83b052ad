"""An operation's webhook deliveries (`GET /{v1beta|v1}/operations/{id}/webhookDeliveries`, a
cinegen extension the playground reads), and a ping that is sent at once, not at the next
poll of the delivery loop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from cinegen.store.outbox import Outbox
from tests.helpers import submit, text_request, wait_done
from tests.support.app import in_process, op_id
from tests.support.engines import ScriptedEngine
from tests.support.receiver import Receiver

ALLOWED = "127.0.0.1"  # http targets must be listed (a trusted deployment's own host)


def _app(tmp_path: Path, **settings: Any) -> Any:
    settings.setdefault("fetch_allow_hosts", ALLOWED)
    settings.setdefault("webhook_retry_scale", 0.001)
    settings.setdefault("workers", 1)
    return in_process(tmp_path / "data", engines={"preview": ScriptedEngine()}, **settings)


def _until(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _create_webhook(client: httpx.Client, uri: str, key: str) -> str:
    created = client.post(
        "/v1beta/webhooks",
        json={"uri": uri, "subscribed_events": ["video.generated"]},
        headers={"x-goog-api-key": key},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def test_an_operations_deliveries_are_listed_for_its_owner_only(tmp_path: Path) -> None:
    with Receiver(statuses=[503]) as receiver, _app(tmp_path) as app, app.client() as client:
        key, other = app.add_key("one"), app.add_key("two")
        mine, theirs = {"x-goog-api-key": key}, {"x-goog-api-key": other}
        hook_id = _create_webhook(client, receiver.url(), key)
        client.headers.update(mine)
        name = submit(client, text_request("a heron"))
        wait_done(client, name)
        receiver.wait_for(2)  # a 503 first, then the retry's 200
        path = f"/v1beta/operations/{op_id(name)}/webhookDeliveries"

        def delivered() -> Any:
            items = client.get(path).json()["deliveries"]
            return items if items and items[0]["state"] == "delivered" else None

        [shown] = _until(delivered)
        assert shown["webhook_id"] == hook_id and shown["operation_id"] == op_id(name)
        assert shown["event_type"] == "video.generated" and shown["last_status"] == 200
        assert shown["target_host"] == f"{receiver.host}:{receiver.port}"
        assert shown["attempt_count"] == 2
        assert [a["status"] for a in shown["attempts"]] == [503, 200]
        assert shown["message_id"] == receiver.requests[0].headers["webhook-id"]
        assert client.get(f"/v1/operations/{op_id(name)}/webhookDeliveries").json() == {
            "deliveries": [shown]
        }

        denied = client.get(path, headers=theirs)
        assert denied.status_code == 404 and denied.json()["error"]["status"] == "NOT_FOUND"
        unknown = client.get("/v1beta/operations/nope/webhookDeliveries")
        assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
        bad_version = client.get(f"/v9/operations/{op_id(name)}/webhookDeliveries")
        assert bad_version.status_code == 404

        # The other key has no webhook: its operation has no deliveries.
        client.headers.update(theirs)
        plain = submit(client, text_request("a crane"))
        wait_done(client, plain)
        listed = client.get(f"/v1beta/operations/{op_id(plain)}/webhookDeliveries")
        assert listed.status_code == 200 and listed.json() == {"deliveries": []}


def test_dynamic_target_shows_its_host_but_not_its_path_or_query(tmp_path: Path) -> None:
    with Receiver() as receiver, _app(tmp_path) as app, app.client() as client:
        body = text_request("a stork")
        body["webhookConfig"] = {"uris": [receiver.url("/dyn?token=s3cret")]}
        name = submit(client, body)
        wait_done(client, name)
        receiver.wait_for(1)
        path = f"/v1beta/operations/{op_id(name)}/webhookDeliveries"
        [shown] = _until(
            lambda: [d for d in client.get(path).json()["deliveries"] if d["state"] != "pending"]
        )
        assert shown["state"] == "delivered" and shown["webhook_id"] is None
        assert shown["target_host"] == f"{receiver.host}:{receiver.port}"
        assert "s3cret" not in str(shown)


def test_ping_is_sent_at_once_not_at_the_next_poll(tmp_path: Path) -> None:
    """The delivery loop polls every 30 s here: only the ping's own wake-up sends it sooner.
    The first ping may meet the loop's first pass; the second finds it asleep."""
    with (
        Receiver() as receiver,
        _app(tmp_path, webhook_poll_seconds=30.0) as app,
        app.client() as client,
    ):
        key = app.add_key("one")
        hook_id = _create_webhook(client, receiver.url(), key)
        outbox = Outbox(app.db)
        for count in (1, 2):
            started = time.monotonic()
            ping = client.post(f"/v1beta/webhooks/{hook_id}:ping", headers={"x-goog-api-key": key})
            assert ping.status_code == 200, ping.text
            receiver.wait_for(count, timeout=5.0)  # raises after 5 s: far under the 30 s poll
            assert time.monotonic() - started < 5.0
            _until(lambda: all(e.state != "pending" for e in outbox.events_page(hook_id, None, 5)))
            time.sleep(0.2)  # the loop's pass after the send is over: it sleeps 30 s now
