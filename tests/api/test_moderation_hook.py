"""The moderation hook (service/moderation.py) against a moderation server on loopback: what
it is sent, allow, deny (Veo's refusal: done, no video, the reason), and failing closed on a
timeout, an error status, garbage, or a target the fetch guard refuses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cinegen.service.prompt_policy import filtered_reason
from tests.helpers import create, text_request
from tests.support.app import InProcessServer, in_process


@dataclass
class Moderator:
    """What the server answers next (`status`, `body`, `delay`), and what it was sent."""

    status: int = 200
    body: bytes = b'{"allow": true}'
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_args: Any) -> None:
        return

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        moderator = self.server.moderator
        length = int(self.headers.get("Content-Length", "0"))
        moderator.received.append(json.loads(self.rfile.read(length)))
        moderator.headers.append(dict(self.headers.items()))
        if moderator.delay:
            time.sleep(moderator.delay)
        try:
            self.send_response(moderator.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(moderator.body)))
            self.end_headers()
            self.wfile.write(moderator.body)
        except OSError:
            pass  # the client gave up (timeout test)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    moderator: Moderator


@pytest.fixture(scope="module")
def moderator() -> Iterator[tuple[Moderator, str]]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.moderator = Moderator()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.moderator, f"http://127.0.0.1:{server.server_address[1]}/moderate"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, moderator: tuple[Moderator, str]
) -> Iterator[InProcessServer]:
    _, url = moderator
    with in_process(
        tmp_path_factory.mktemp("moderation") / "data",
        workers=0,
        moderation_url=url,
        moderation_timeout_seconds=0.5,
        fetch_allow_hosts="127.0.0.1",
    ) as app:
        yield app


@pytest.fixture
def mod(moderator: tuple[Moderator, str]) -> Iterator[Moderator]:
    state = moderator[0]
    state.status, state.body, state.delay = 200, b'{"allow": true}', 0.0
    state.received.clear()
    state.headers.clear()
    yield state


def operations_count(client: httpx.Client) -> int:
    response = client.get("/v1beta/operations", params={"pageSize": 1000})
    assert response.status_code == 200, response.text
    return len(response.json().get("operations", []))


def moderation_blocks(app: InProcessServer) -> float:
    with app.client() as client:
        text = client.get("/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "cinegen_prompts_blocked_total" and s.labels.get("source") == "moderation"
    )


def test_allowed_prompt_is_queued_and_the_hook_sees_it(
    app: InProcessServer, mod: Moderator
) -> None:
    body = text_request("a lighthouse in a storm", negativePrompt="people")
    with app.client() as client:
        response = create(client, body)
        assert response.status_code == 200, response.text
        polled = client.get(f"/v1beta/{response.json()['name']}").json()
    assert not polled.get("done")
    assert mod.received == [
        {
            "prompt": "a lighthouse in a storm",
            "negativePrompt": "people",
            "model": "veo-3.1-generate-preview",
        }
    ]
    assert mod.headers[0]["Content-Type"] == "application/json"


def test_denied_prompt_is_refused_as_veo_does(app: InProcessServer, mod: Moderator) -> None:
    mod.body = b'{"allow": false, "reason": "violence"}'
    before = moderation_blocks(app)
    with app.client() as client:
        response = create(client, text_request("a duel"))
        assert response.status_code == 200, response.text
        polled = client.get(f"/v1beta/{response.json()['name']}").json()
    assert polled["done"] is True
    answer = polled["response"]["generateVideoResponse"]
    assert answer["raiMediaFilteredCount"] == 1
    assert answer["raiMediaFilteredReasons"] == [filtered_reason(1)]
    assert not answer.get("generatedSamples")
    assert moderation_blocks(app) == before + 1


@pytest.mark.parametrize(
    ("status", "body", "delay"),
    [
        (200, b'{"allow": true}', 2.0),  # past the 0.5 s timeout
        (500, b'{"allow": true}', 0.0),
        (302, b"", 0.0),  # no redirect is followed
        (200, b"<html>ok</html>", 0.0),
        (200, b'{"allow": "yes"}', 0.0),
        (200, b'{"reason": "no verdict"}', 0.0),
        (200, b"[true]", 0.0),
        (200, b'{"allow": true, "pad": "' + b"x" * 70_000 + b'"}', 0.0),
    ],
)
def test_no_usable_answer_fails_closed(
    app: InProcessServer, mod: Moderator, status: int, body: bytes, delay: float
) -> None:
    mod.status, mod.body, mod.delay = status, body, delay
    before = moderation_blocks(app)
    with app.client() as client:
        kept = operations_count(client)
        started = time.monotonic()
        response = create(client, text_request("a quiet harbour"))
        elapsed = time.monotonic() - started
        assert operations_count(client) == kept  # nothing kept
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["status"] == "UNAVAILABLE"
    assert "could not be screened" in error["message"]
    assert elapsed < 1.9  # the hook's timeout, not the moderator's delay
    assert moderation_blocks(app) == before


def test_a_target_the_guard_refuses_is_never_contacted(tmp_path: Path, mod: Moderator) -> None:
    """Without the allow-list, loopback is a refused address: 503, and no request is sent."""
    port = 9  # never contacted: the check comes first
    with (
        in_process(
            tmp_path / "data", workers=0, moderation_url=f"http://127.0.0.1:{port}/moderate"
        ) as app,
        app.client() as client,
    ):
        response = create(client, text_request("a kite"))
    assert response.status_code == 503
    assert response.json()["error"]["status"] == "UNAVAILABLE"
    assert mod.received == []


def test_no_prompt_text_skips_the_hook(app: InProcessServer, mod: Moderator) -> None:
    """An image-only request has nothing to moderate (the person filter still applies)."""
    from tests.helpers import b64, png_bytes

    image = {"bytesBase64Encoded": b64(png_bytes()), "mimeType": "image/png"}
    body = {"instances": [{"image": image}], "parameters": {"durationSeconds": 4}}
    with app.client() as client:
        response = create(client, body)
    assert response.status_code == 200, response.text
    assert mod.received == []
