"""`/v1/videos` status words per video (issue 30, fault 2).

LiteLLM's `openai/` provider sends no `X-Stainless-*` header and `User-Agent: litellm/…`, so it
used to get the gateway's `""` / `failure`, which a LiteLLM proxy hands on to its own OpenAI
clients. Now a create that is OpenAI-shaped (multipart, or JSON with `seconds` / `size` /
`input_reference` and none of the gateway's `images` / `metadata`) is stored in the `openai`
dialect and every later request about that video gets OpenAI's words, unless the request asks
otherwise (`?compat=`, `X-Video-Compat`, the OpenAI SDK's headers);
`CINEGEN_VIDEOS_DIALECT` picks the words for a whole deployment. The gateway's own format
(seed 004) keeps the gateway's words.

The LiteLLM requests are the exact bytes it sent, captured from `litellm.video_generation(
model="openai/veo-3.1-fast-generate-preview", prompt="a cat", seconds="4", size="1280x720")`
and `litellm.video_status(...)` (litellm 1.110.0 and 1.110.2 send multipart; the JSON body is
the same request as JSON, which an OpenAI-compatible proxy may send).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cinegen.api.videos.translate import operation_id
from tests.api.videos.support import RED_PNG, b64
from tests.support.app import InProcessServer, in_process

FAST = "veo-3.1-fast-generate-preview"
LITELLM = {
    "User-Agent": "litellm/1.110.0",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Authorization": "Bearer sk-x",
}
LITELLM_JSON = (
    b'{"model": "veo-3.1-fast-generate-preview", "prompt": "a cat", "seconds": "4", '
    b'"size": "1280x720"}'
)
BOUNDARY = "b658c57edc546f8087cfcce916f79d89"  # as captured from litellm 1.110.0
LITELLM_MULTIPART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
    f"veo-3.1-fast-generate-preview\r\n"
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na cat\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="seconds"\r\n\r\n4\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="size"\r\n\r\n1280x720\r\n'
    f"--{BOUNDARY}--\r\n"
).encode()
# The gateway's format (seed 004's payloads): images and/or metadata, or neither.
GATEWAY_BODIES = [
    {"model": FAST, "prompt": "a cat", "images": [b64(RED_PNG)]},
    {"model": FAST, "prompt": "a cat", "metadata": {"aspectRatio": "9:16", "durationSeconds": 4}},
    {"model": FAST, "prompt": "a cat"},
    # OpenAI's fields beside the gateway's: the gateway's format still
    {"model": FAST, "prompt": "a cat", "seconds": "4", "metadata": {"durationSeconds": 4}},
]
OPENAI_WORDS = ("queued", "failed")
GATEWAY_WORDS = ("", "failure")


@pytest.fixture
def client(fresh_app: InProcessServer) -> Iterator[httpx.Client]:
    with fresh_app.client() as c:
        yield c


def litellm_json(client: httpx.Client, **params: str) -> dict[str, Any]:
    headers = {**LITELLM, "Content-Type": "application/json"}
    return created(client.post("/v1/videos", content=LITELLM_JSON, headers=headers, params=params))


def litellm_multipart(client: httpx.Client) -> dict[str, Any]:
    headers = {**LITELLM, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return created(client.post("/v1/videos", content=LITELLM_MULTIPART, headers=headers))


def gateway(client: httpx.Client, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    return created(client.post("/v1/videos", json=body, headers={**LITELLM, **headers}))


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def status(client: httpx.Client, video: str, **headers: str) -> str:
    response = client.get(f"/v1/videos/{video}", headers={**LITELLM, **headers})
    assert response.status_code == 200, response.text
    return response.json()["status"]


def listed(client: httpx.Client) -> dict[str, str]:
    page = client.get("/v1/videos", params={"limit": 100}, headers=LITELLM).json()
    return {video["id"]: video["status"] for video in page["data"]}


def cancel(client: httpx.Client, video: str) -> None:
    response = client.post(f"/v1beta/operations/{operation_id(video)}:cancel")
    assert response.status_code == 200, response.text


def queued_and_failed(client: httpx.Client, video: dict[str, Any]) -> tuple[str, str]:
    """The word while queued (create's answer and a poll must agree), then once it failed."""
    queued = status(client, video["id"])
    assert video["status"] == queued
    cancel(client, video["id"])
    return queued, status(client, video["id"])


@pytest.mark.parametrize("send", [litellm_json, litellm_multipart], ids=["json", "multipart"])
def test_litellm_openai_provider_gets_openai_words(
    fresh_app: InProcessServer, client: httpx.Client, send: Any
) -> None:
    video = send(client)
    assert video["status"] == "queued"
    assert (video["seconds"], video["size"]) == ("4", "1280x720")
    assert status(client, video["id"]) == "queued"
    assert listed(client)[video["id"]] == "queued"
    early = client.get(f"/v1/videos/{video['id']}/content", headers=LITELLM)
    assert early.status_code == 400
    assert early.json()["error"]["message"].endswith("current status: queued")
    fresh_app.run(operation_id(video["id"]))
    done = client.get(f"/v1/videos/{video['id']}", headers=LITELLM).json()
    assert done["status"] == "completed"
    content = client.get(f"/v1/videos/{video['id']}/content", headers=LITELLM)
    assert content.status_code == 200 and content.content[4:8] == b"ftyp"
    failing = send(client)
    cancel(client, failing["id"])
    failed = client.get(f"/v1/videos/{failing['id']}", headers=LITELLM).json()
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "cancelled", "message": "Operation cancelled."}
    assert listed(client)[failing["id"]] == "failed"


@pytest.mark.parametrize("body", GATEWAY_BODIES)
def test_gateway_shaped_creates_keep_the_gateways_words(
    client: httpx.Client, body: dict[str, Any]
) -> None:
    """The same User-Agent, the gateway's format: `""` and `failure`, as seed 004 expects."""
    assert queued_and_failed(client, gateway(client, body)) == GATEWAY_WORDS


def test_the_words_are_per_video_in_one_list(client: httpx.Client) -> None:
    openai = litellm_json(client)
    gateway_video = gateway(client, GATEWAY_BODIES[0])
    assert listed(client) == {openai["id"]: "queued", gateway_video["id"]: ""}


def test_a_request_that_asks_still_wins(client: httpx.Client) -> None:
    openai = litellm_json(client)["id"]
    gateway_video = gateway(client, GATEWAY_BODIES[1])["id"]
    assert status(client, openai, **{"X-Video-Compat": "gateway"}) == ""
    forced = client.get(f"/v1/videos/{openai}", params={"compat": "gateway"}, headers=LITELLM)
    assert forced.json()["status"] == ""
    assert status(client, gateway_video, **{"X-Stainless-Lang": "python"}) == "queued"
    assert status(client, gateway_video, **{"User-Agent": "OpenAI/Python 3.54.0"}) == "queued"
    assert status(client, gateway_video, **{"X-Video-Compat": "openai"}) == "queued"
    # what the create itself asked for is remembered too
    asked = litellm_json(client, compat="gateway")
    assert (asked["status"], status(client, asked["id"])) == ("", "")
    sdk = gateway(client, GATEWAY_BODIES[0], **{"X-Stainless-Lang": "python"})
    assert (sdk["status"], status(client, sdk["id"])) == ("queued", "queued")


def test_remix_keeps_the_source_words(client: httpx.Client) -> None:
    for source, word in (
        (litellm_json(client), "queued"),
        (gateway(client, GATEWAY_BODIES[2]), ""),
    ):
        remix = client.post(
            f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=LITELLM
        )
        assert remix.status_code == 200, remix.text
        assert remix.json()["status"] == word
        assert status(client, remix.json()["id"]) == word


@pytest.mark.parametrize(
    ("setting", "litellm_words", "gateway_words"),
    [
        ("auto", OPENAI_WORDS, GATEWAY_WORDS),
        ("openai", OPENAI_WORDS, OPENAI_WORDS),
        ("gateway", GATEWAY_WORDS, GATEWAY_WORDS),
    ],
)
def test_the_setting_picks_the_deployments_words(
    tmp_path: Path,
    setting: str,
    litellm_words: tuple[str, str],
    gateway_words: tuple[str, str],
) -> None:
    with in_process(tmp_path, workers=0, videos_dialect=setting) as app, app.client() as http:
        assert queued_and_failed(http, litellm_json(http)) == litellm_words
        assert queued_and_failed(http, gateway(http, GATEWAY_BODIES[0])) == gateway_words
        # the OpenAI SDK and an explicit ask still get what they ask for
        video = gateway(http, GATEWAY_BODIES[2])["id"]
        assert status(http, video, **{"X-Stainless-Lang": "python"}) == "queued"
        assert status(http, video, **{"X-Video-Compat": "gateway"}) == ""


def test_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from tests.support.app import settings_for

    with pytest.raises(ValidationError):
        settings_for(tmp_path, videos_dialect="litellm")
