"""Webhook deliveries when things go wrong (spec gemini-webhooks.md §4.4–§4.6): a receiver
down for the first attempts, the server SIGKILLed right after an operation ended, a receiver
that always fails, targets on private addresses or redirecting to one; and the deliveries
listing and resend that show and repair it."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook as StandardWebhook

from cinegen.service.webhooks import WebhookFields, WebhookService
from cinegen.store.outbox import Outbox
from tests.helpers import submit, text_request, wait_done
from tests.support.app import InProcessServer, in_process
from tests.support.engines import ScriptedEngine
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess, free_port

# 127.0.0.1 is allowed (as a trusted deployment would list a host); 127.0.0.2 is another
# loopback address, so a private one the guard must refuse.
ALLOWED = "127.0.0.1"
PRIVATE = "127.0.0.2"


def _app(tmp_path: Path, **settings: Any) -> Any:
    settings.setdefault("fetch_allow_hosts", ALLOWED)
    settings.setdefault("webhook_retry_scale", 0.001)
    settings.setdefault("workers", 1)
    return in_process(tmp_path / "data", engines={"preview": ScriptedEngine()}, **settings)


def _webhook(app: InProcessServer, uri: str) -> tuple[str, str]:
    record, secret = WebhookService(app.db, app.settings).create(
        None, WebhookFields(uri=uri, subscribed_events=["video.generated"])
    )
    return record.id, secret


def _wait(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def private_receiver() -> Iterator[Receiver]:
    with Receiver(host=PRIVATE) as r:
        yield r


def test_receiver_down_first_then_delivered_with_the_same_id(tmp_path: Path) -> None:
    port = free_port()
    with _app(tmp_path) as app, app.client() as client:
        hook_id, secret = _webhook(app, f"http://{ALLOWED}:{port}/hook")
        wait_done(client, submit(client, text_request("a wren")))
        outbox = Outbox(app.db)

        def failed_attempts() -> int:
            """Attempts already recorded as failed (a claimed one may still be in flight:
            the event's `attempts` counts it before it connects)."""
            listing = client.get(f"/v1beta/webhooks/{hook_id}/deliveries").json()
            rows = listing.get("deliveries", [])
            return sum(1 for a in rows[0]["attempts"] if a.get("error")) if rows else 0

        _wait(lambda: failed_attempts() >= 3)
        with Receiver(port=port) as receiver:
            [delivery] = receiver.wait_for(1)
            StandardWebhook(secret).verify(delivery.body, delivery.headers)
            [event] = _wait(
                lambda: [e for e in outbox.events_page(hook_id, None, 1) if e.state == "delivered"]
            )
        assert delivery.headers["webhook-id"] == event.msg_id
        listing = client.get(f"/v1beta/webhooks/{hook_id}/deliveries").json()
        [shown] = listing["deliveries"]
        assert shown["message_id"] == event.msg_id and shown["state"] == "delivered"
        statuses = [a.get("status") for a in shown["attempts"]]
        assert len(statuses) >= 4 and statuses[-1] == 200 and set(statuses[:3]) == {None}
        assert all(a["error"] for a in shown["attempts"][:3])


def test_always_failing_receiver_disables_the_webhook(tmp_path: Path) -> None:
    with (
        Receiver(default=500) as receiver,
        _app(tmp_path, webhook_retry_scale=0.00002) as app,
        app.client() as client,
    ):
        hook_id, _secret = _webhook(app, receiver.url())
        name = submit(client, text_request("a gull"))
        done = wait_done(client, name)
        assert "error" not in done and done["response"]["generateVideoResponse"]
        service = WebhookService(app.db, app.settings)
        _wait(lambda: service.get(None, hook_id).state == "disabled_due_to_failed_deliveries")
        [event] = Outbox(app.db).events_page(hook_id, None, 10)
        assert event.state == "failed" and event.attempts == 10
        assert len(receiver.requests) == 10  # the whole schedule, then given up
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
        assert len({r.headers["webhook-timestamp"] for r in receiver.requests}) >= 1
        # The operation is untouched; a disabled webhook gets nothing more.
        assert client.get(f"/v1beta/{name}").json()["done"] is True
        wait_done(client, submit(client, text_request("another gull")))
        time.sleep(0.5)
        assert len(receiver.requests) == 10


def test_private_target_is_refused_and_never_connected(
    tmp_path: Path, private_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cinegen.webhooks")
    with _app(tmp_path) as app, app.client() as client:
        hook_id, _ = _webhook(app, private_receiver.url(scheme="https"))
        body = text_request("a crow")
        dynamic = private_receiver.url("/dynamic")  # plain http to a private address
        body["webhookConfig"] = {"uris": [dynamic]}
        wait_done(client, submit(client, body))
        wait_done(client, submit(client, text_request("a rook")))
        outbox = Outbox(app.db)
        [static] = _wait(
            lambda: [e for e in outbox.events_page(hook_id, None, 5) if e.attempts >= 2]
        )
        assert static.last_error is not None and static.last_error.startswith("refused: ")
        assert "loopback" in static.last_error
        _wait(lambda: "refused, not sent" in caplog.text)
        time.sleep(0.3)
    assert private_receiver.connections == 0
    assert private_receiver.requests == []


def test_redirect_to_a_private_address_is_not_followed(
    tmp_path: Path, private_receiver: Receiver
) -> None:
    with (
        Receiver(redirect_to=private_receiver.url()) as redirector,
        _app(tmp_path) as app,
        app.client() as client,
    ):
        hook_id, _ = _webhook(app, redirector.url())
        wait_done(client, submit(client, text_request("a jay")))
        outbox = Outbox(app.db)
        [event] = _wait(lambda: [e for e in outbox.events_page(hook_id, None, 5) if e.attempts])
        _wait(lambda: outbox.events_page(hook_id, None, 5)[0].last_status == 302)
        assert redirector.connections >= 1
    assert private_receiver.connections == 0


def test_deliveries_are_owner_scoped_paged_and_resent(tmp_path: Path) -> None:
    with Receiver() as receiver, _app(tmp_path) as app, app.client() as client:
        key = app.add_key("one")
        other = app.add_key("two")
        mine = {"x-goog-api-key": key}
        created = client.post(
            "/v1beta/webhooks",
            json={"uri": receiver.url(), "subscribed_events": ["video.generated"]},
            headers=mine,
        )
        assert created.status_code == 200, created.text
        hook_id = created.json()["id"]
        for prompt in ("one", "two", "three"):
            submit_response = client.post(
                "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                json=text_request(prompt),
                headers=mine,
            )
            assert submit_response.status_code == 200
        receiver.wait_for(3)
        path = f"/v1/webhooks/{hook_id}/deliveries"
        first = client.get(path, params={"page_size": 2}, headers=mine).json()
        assert len(first["deliveries"]) == 2 and first["next_page_token"]
        rest = client.get(
            path, params={"page_size": 2, "page_token": first["next_page_token"]}, headers=mine
        ).json()
        assert len(rest["deliveries"]) == 1 and "next_page_token" not in rest
        ids = [d["id"] for d in first["deliveries"] + rest["deliveries"]]
        assert len(set(ids)) == 3
        denied = client.get(path, headers={"x-goog-api-key": other})
        assert denied.status_code == 404 and denied.json()["error"]["status"] == "NOT_FOUND"
        bad = client.get(path, params={"page_token": "%%%"}, headers=mine)
        assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
        resent = client.post(f"{path}/{ids[0]}:resend", headers=mine)
        assert resent.status_code == 200, resent.text
        assert resent.json()["state"] in ("pending", "delivered")
        [*_, again] = receiver.wait_for(4)
        assert again.headers["webhook-id"] == resent.json()["message_id"]
        missing = client.post(f"{path}/nope:resend", headers=mine)
        assert missing.status_code == 404
        receiver.wait_for(4)
        lines = _cli(app, "deliveries", hook_id).splitlines()
        assert len(lines) == 3 and all(" delivered " in line for line in lines)
        assert sorted(line.split()[0] for line in lines) == sorted(ids)
        assert ids[1] in _cli(app, "resend", hook_id, ids[1])
        [*_, by_cli] = receiver.wait_for(5)
        assert by_cli.headers["webhook-id"] == rest_or_first(first, rest, ids[1])


def rest_or_first(first: dict, rest: dict, delivery_id: str) -> str:
    [found] = [
        d["message_id"] for d in first["deliveries"] + rest["deliveries"] if d["id"] == delivery_id
    ]
    return found


def _cli(app: InProcessServer, *args: str) -> str:
    """`cinegen webhooks ARGS` on the app's data directory."""
    env = {**os.environ, "CINEGEN_DATA_DIR": str(app.settings.data_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "webhooks", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def _events(data_dir: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(data_dir / "cinegen.db") as conn:
        return list(conn.execute("SELECT msg_id, state, attempts FROM webhook_events"))


def test_sigkill_right_after_the_end_still_delivers(tmp_path: Path) -> None:
    """The event is written with the operation's end: a server killed before sending it
    sends it after the restart (the receiver is down until then, so nothing went out)."""
    port = free_port()
    server = ServerProcess(
        tmp_path / "server",
        env_extra={
            "CINEGEN_FETCH_ALLOW_HOSTS": ALLOWED,
            "CINEGEN_WEBHOOK_RETRY_SCALE": "0.0001",
            "CINEGEN_WEBHOOK_TIMEOUT_SECONDS": "2",
        },
    )
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            created = client.post(
                "/v1beta/webhooks",
                json={
                    "uri": f"http://{ALLOWED}:{port}/hook",
                    "subscribed_events": ["video.generated"],
                },
            )
            assert created.status_code == 200, created.text
            secret = created.json()["new_signing_secret"]
            name = submit(client, text_request("a swift", resolution="720p"))
            wait_done(client, name)
        server.kill()
        [(msg_id, state, _attempts)] = _events(server.data_dir)
        assert state == "pending"
        with Receiver(port=port) as receiver:
            server.start()
            [delivery] = receiver.wait_for(1, timeout=60)
        event = StandardWebhook(secret).verify(delivery.body, delivery.headers)
        assert event["data"]["id"] == name
        assert delivery.headers["webhook-id"] == msg_id
    finally:
        server.stop()


def test_receiver_down_port_is_really_closed() -> None:
    """The tests' "down" receiver is a port nothing listens on: a connect is refused."""
    port = free_port()
    with pytest.raises(OSError), socket.create_connection((ALLOWED, port), timeout=1):
        pass
