"""`Idempotency-Key` on every create route of every dialect (issue 30, fault 4).

The Vercel AI SDK sends a key on every Gemini and Vertex create and retries twice; without the
key each retry started one more job. One implementation (cinegen/api/idempotency.py) serves
Gemini, Vertex (scoped and express) and `/v1/videos` (create and remix): the same key and body
answer the first create's operation in the dialect's own form; the same key with another body,
on another route or for another model is refused. Through the in-process app with no worker,
so every operation stays queued and is counted exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cinegen.api import idempotency
from tests.api.vertex.support import model_path
from tests.support.app import InProcessServer, op_id

MODEL = "veo-3.1-generate-preview"
FAST = "veo-3.1-fast-generate-preview"
BODY = {"instances": [{"prompt": "a lighthouse at dusk"}], "parameters": {"durationSeconds": 4}}
OTHER_PARAMETERS = (
    "Keys for idempotent requests can only be used with the same parameters they were first "
    "used with."
)
GEMINI = f"/v1beta/models/{MODEL}:predictLongRunning"
VERTEX_SCOPED = f"{model_path(MODEL, 'v1')}:predictLongRunning"
VERTEX_EXPRESS = f"{model_path(MODEL, 'v1', prefix='')}:predictLongRunning"


@pytest.fixture
def client(fresh_app: InProcessServer) -> Iterator[httpx.Client]:
    with fresh_app.client() as c:
        yield c


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def operation_count(client: httpx.Client) -> int:
    listed = client.get("/v1beta/operations", params={"pageSize": 1000})
    assert listed.status_code == 200, listed.text
    return len(listed.json().get("operations", []))


def refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {
        "code": 400,
        "message": OTHER_PARAMETERS,
        "status": "INVALID_ARGUMENT",
    }


@pytest.mark.parametrize("path", [GEMINI, VERTEX_SCOPED, VERTEX_EXPRESS])
def test_same_key_twice_is_one_operation(client: httpx.Client, path: str) -> None:
    first = client.post(path, json=BODY, headers=keyed("retry-1"))
    again = client.post(path, json=BODY, headers=keyed("retry-1"))
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json()  # the same name, in the dialect's own form
    if path == VERTEX_SCOPED:
        assert first.json()["name"].startswith("projects/my-project/locations/us-central1/")
    assert operation_count(client) == 1


@pytest.mark.parametrize("path", [GEMINI, VERTEX_SCOPED, VERTEX_EXPRESS])
def test_without_a_key_each_create_is_a_job(client: httpx.Client, path: str) -> None:
    first = client.post(path, json=BODY)
    again = client.post(path, json=BODY, headers=keyed("   "))  # blank: no key
    assert first.json()["name"] != again.json()["name"]
    assert operation_count(client) == 2


@pytest.mark.parametrize("path", [GEMINI, VERTEX_SCOPED, VERTEX_EXPRESS])
def test_same_key_other_body_is_refused(client: httpx.Client, path: str) -> None:
    assert client.post(path, json=BODY, headers=keyed("k")).status_code == 200
    other = {**BODY, "parameters": {"durationSeconds": 6}}
    refused(client.post(path, json=other, headers=keyed("k")))
    assert operation_count(client) == 1


def test_key_order_of_the_json_does_not_matter(client: httpx.Client) -> None:
    reordered = {"parameters": {"durationSeconds": 4}, "instances": BODY["instances"]}
    first = client.post(GEMINI, json=BODY, headers=keyed("order"))
    again = client.post(GEMINI, json=reordered, headers=keyed("order"))
    assert again.json() == first.json()


@pytest.mark.parametrize(
    ("first_path", "second_path"),
    [
        (GEMINI, VERTEX_SCOPED),  # another dialect
        (VERTEX_SCOPED, GEMINI),
        (VERTEX_SCOPED, VERTEX_EXPRESS),  # another name form (no project)
        (VERTEX_SCOPED, f"{model_path(MODEL, 'v1', 'projects/p2/locations/l/')}"
         ":predictLongRunning"),  # another project
        (GEMINI, f"/v1alpha/models/{MODEL}:predictLongRunning"),  # another API version
        (GEMINI, f"/v1beta/models/{FAST}:predictLongRunning"),  # another model
    ],
)  # fmt: skip
def test_a_key_reused_on_another_route_is_other_parameters(
    client: httpx.Client, first_path: str, second_path: str
) -> None:
    """The first answer cannot be replayed in another form (a Vertex name carries its project,
    a Gemini one none), and a client that reuses a key across endpoints has a bug to see."""
    assert client.post(first_path, json=BODY, headers=keyed("shared")).status_code == 200
    refused(client.post(second_path, json=BODY, headers=keyed("shared")))
    assert operation_count(client) == 1


def test_keys_are_per_api_key(fresh_app: InProcessServer) -> None:
    alice, bob = fresh_app.add_key("alice"), fresh_app.add_key("bob")
    with fresh_app.client() as http:
        a = http.post(GEMINI, json=BODY, headers={**keyed("same"), "x-goog-api-key": alice})
        b = http.post(GEMINI, json=BODY, headers={**keyed("same"), "x-goog-api-key": bob})
    assert a.status_code == b.status_code == 200
    assert a.json()["name"] != b.json()["name"]


def test_a_key_too_long_is_a_400(client: httpx.Client) -> None:
    for path in (GEMINI, VERTEX_SCOPED, "/v1/videos"):
        body = {"model": MODEL, "prompt": "x"} if path == "/v1/videos" else BODY
        response = client.post(path, json=body, headers=keyed("k" * 256))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"] == (
            "Invalid value at 'Idempotency-Key': at most 255 characters."
        )
    assert client.post(GEMINI, json=BODY, headers=keyed("k" * 255)).status_code == 200
    assert operation_count(client) == 1


def test_a_deleted_operation_frees_its_key(client: httpx.Client) -> None:
    first = client.post(GEMINI, json=BODY, headers=keyed("gone")).json()["name"]
    assert client.delete(f"/v1beta/{first}").status_code == 200
    again = client.post(GEMINI, json=BODY, headers=keyed("gone")).json()["name"]
    assert again != first
    assert operation_count(client) == 1


def test_a_refused_create_stores_no_key(client: httpx.Client) -> None:
    bad = {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 5}}
    assert client.post(GEMINI, json=bad, headers=keyed("fix")).status_code == 400
    fixed = client.post(GEMINI, json=BODY, headers=keyed("fix"))
    assert fixed.status_code == 200, fixed.text


def concurrently(count: int, send: Callable[[], httpx.Response]) -> list[httpx.Response]:
    responses: list[Any] = [None] * count
    start = threading.Barrier(count)

    def one(index: int) -> None:
        start.wait()
        responses[index] = send()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


@pytest.mark.parametrize("path", [GEMINI, VERTEX_SCOPED, "/v1/videos"])
def test_concurrent_creates_with_one_key_are_one_operation(
    fresh_app: InProcessServer, path: str
) -> None:
    body = {"model": FAST, "prompt": "racing", "seconds": "4"} if path == "/v1/videos" else BODY
    with fresh_app.client() as http:
        responses = concurrently(8, lambda: http.post(path, json=body, headers=keyed("race")))
        assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
        answers = {r.text for r in responses}
        assert len(answers) == 1, answers
        assert operation_count(http) == 1


# /v1/videos: the same implementation ------------------------------------------------


def test_videos_create_replays_the_first_video(client: httpx.Client) -> None:
    body = {"model": FAST, "prompt": "only once", "seconds": "4"}
    first = client.post("/v1/videos", json=body, headers=keyed("v"))
    again = client.post("/v1/videos", json=body, headers=keyed("v"))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    refused(client.post("/v1/videos", json={**body, "seconds": "8"}, headers=keyed("v")))
    # the same key on a Gemini create: another route, so other parameters
    refused(client.post(f"/v1beta/models/{FAST}:predictLongRunning", json=BODY, headers=keyed("v")))
    assert operation_count(client) == 1


def test_videos_remix_honours_the_key(client: httpx.Client) -> None:
    source = client.post("/v1/videos", json={"model": FAST, "prompt": "a", "seconds": "4"})
    video = source.json()["id"]
    remix = client.post(f"/v1/videos/{video}/remix", json={"prompt": "b"}, headers=keyed("r"))
    again = client.post(f"/v1/videos/{video}/remix", json={"prompt": "b"}, headers=keyed("r"))
    assert remix.status_code == again.status_code == 200, remix.text
    assert again.json()["id"] == remix.json()["id"] != video
    assert again.json()["remixed_from_video_id"] == video
    refused(client.post(f"/v1/videos/{video}/remix", json={"prompt": "c"}, headers=keyed("r")))
    other = client.post("/v1/videos", json={"model": FAST, "prompt": "z", "seconds": "4"})
    other_remix = f"/v1/videos/{other.json()['id']}/remix"
    refused(client.post(other_remix, json={"prompt": "b"}, headers=keyed("r")))
    assert operation_count(client) == 3


def test_the_replayed_operation_is_the_first_one(
    fresh_app: InProcessServer, client: httpx.Client
) -> None:
    """The replay is the same operation, not a copy: cancelling it shows through both names."""
    name = client.post(VERTEX_SCOPED, json=BODY, headers=keyed("same-op")).json()["name"]
    assert client.post(f"/v1beta/operations/{op_id(name)}:cancel").status_code == 200
    again = client.post(VERTEX_SCOPED, json=BODY, headers=keyed("same-op")).json()["name"]
    assert again == name
    assert fresh_app.db.get_operation(op_id(again)).state.value == "cancelled"


def test_fingerprint_covers_route_model_and_body() -> None:
    base = idempotency.fingerprint("gemini v1beta", MODEL, BODY)
    assert base == idempotency.fingerprint("gemini v1beta", MODEL, dict(reversed(BODY.items())))
    assert base != idempotency.fingerprint("vertex v1 ", MODEL, BODY)
    assert base != idempotency.fingerprint("gemini v1beta", FAST, BODY)
    assert base != idempotency.fingerprint("gemini v1beta", MODEL, {**BODY, "x": 1})
