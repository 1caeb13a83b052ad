"""The Gemini API routes: every mode's output contract, operations (get, list, cancel,
delete), downloads with Range, the model catalog.

The app runs in this process (`app_server`, tests/support/app.py): the same routes, workers
and files as `cinegen serve`, without a subprocess. The SDKs drive a real server process in
tests/clients/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    b64,
    create,
    decode_png,
    first_and_last_frames,
    generate,
    png_bytes,
    psnr,
    sample_uris,
    video_facts,
    wait_done,
)
from tests.support.app import InProcessServer


@pytest.fixture
def client(app_server: InProcessServer) -> Iterator[httpx.Client]:
    with app_server.client() as c:
        yield c


def download(client: httpx.Client, uri: str, path: Path) -> Path:
    response = client.get(uri, follow_redirects=True)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)
    path.write_bytes(response.content)
    return path


def test_models_list_and_get(client: httpx.Client) -> None:
    body = client.get("/v1beta/models").json()
    names = [m["name"] for m in body["models"]]
    assert "models/veo-3.1-generate-preview" in names
    assert all(m["supportedGenerationMethods"] == ["predictLongRunning"] for m in body["models"])
    one = client.get("/v1/models/veo-2.0-generate-001").json()
    assert one["name"] == "models/veo-2.0-generate-001"
    missing = client.get("/v1beta/models/veo-9")
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"


def test_unknown_model_is_refused_with_veo_words(client: httpx.Client) -> None:
    response = create(client, {"instances": [{"prompt": "x"}]}, model="veo-9")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == (
        "models/veo-9 is not found for API version v1beta, or is not supported for "
        "predictLongRunning. Call ListModels to see the list of available models and their "
        "supported methods."
    )


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"durationSeconds": 4}, (1280, 720)),
        ({"durationSeconds": 4, "aspectRatio": "9:16"}, (720, 1280)),
    ],
)
def test_text_to_video_contract(
    client: httpx.Client, tmp_path: Path, params: dict, size: tuple[int, int]
) -> None:
    op = generate(
        client, {"instances": [{"prompt": "a lighthouse at night, rain"}], "parameters": params}
    )
    facts = video_facts(download(client, sample_uris(op)[0], tmp_path / "t.mp4"))
    assert (facts.width, facts.height) == size
    assert facts.fps == 24
    assert facts.frames == 4 * 24
    assert (facts.audio_rate, facts.audio_channels) == (48000, 2)
    assert op["metadata"]["progressPercent"] == 100
    assert op["metadata"]["createTime"].endswith("Z")


def test_veo2_has_no_audio_track(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(
        client,
        {"instances": [{"prompt": "a quiet forest"}], "parameters": {"durationSeconds": 5}},
        model="veo-2.0-generate-001",
    )
    facts = video_facts(download(client, sample_uris(op)[0], tmp_path / "v2.mp4"))
    assert facts.frames == 5 * 24
    assert facts.audio_rate is None


def test_first_and_last_frame_are_honoured(client: httpx.Client, tmp_path: Path) -> None:
    first = png_bytes(1280, 720, (30, 90, 200), square=(100, 300))
    last = png_bytes(1280, 720, (200, 120, 30), square=(1000, 300))
    op = generate(
        client,
        {
            "instances": [
                {
                    "prompt": "the square slides right",
                    "image": {"inlineData": {"mimeType": "image/png", "data": b64(first)}},
                }
            ],
            "parameters": {"lastFrame": {"bytesBase64Encoded": b64(last), "mimeType": "image/png"}},
        },
    )
    path = download(client, sample_uris(op)[0], tmp_path / "fl.mp4")
    assert video_facts(path).frames == 8 * 24
    got_first, got_last = first_and_last_frames(path)
    assert psnr(got_first, decode_png(first)) >= 35
    assert psnr(got_last, decode_png(last)) >= 35


def test_sample_count_gives_distinct_samples(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(
        client,
        {
            "instances": [{"prompt": "sparks in the night"}],
            "parameters": {"sampleCount": 2, "durationSeconds": 4, "seed": 7},
        },
    )
    uris = sample_uris(op)
    assert len(uris) == 2 and uris[0] != uris[1]
    a = download(client, uris[0], tmp_path / "a.mp4").read_bytes()
    b = download(client, uris[1], tmp_path / "b.mp4").read_bytes()
    assert a != b
    assert op["metadata"]["seed"] == 7


def test_the_same_request_and_seed_give_the_same_file(client: httpx.Client, tmp_path: Path) -> None:
    # Two operations, so two operation ids: neither is written into the file.
    body = {"instances": [{"prompt": "a fox in the snow"}], "parameters": {"durationSeconds": 4}}
    seeded = {**body, "parameters": {**body["parameters"], "seed": 42}}
    files = []
    for index, request in enumerate((seeded, seeded, {**body, "parameters": {"seed": 43}})):
        op = generate(client, request)
        files.append(download(client, sample_uris(op)[0], tmp_path / f"{index}.mp4").read_bytes())
    assert files[0] == files[1]
    assert files[0] != files[2]
    drawn = generate(client, body)  # no seed: one is drawn, and reported
    again = generate(
        client, {**body, "parameters": {**body["parameters"], "seed": drawn["metadata"]["seed"]}}
    )
    first = download(client, sample_uris(drawn)[0], tmp_path / "drawn.mp4").read_bytes()
    assert first == download(client, sample_uris(again)[0], tmp_path / "again.mp4").read_bytes()


def test_extension_appends_seven_seconds(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(
        client,
        {"instances": [{"prompt": "a paper butterfly"}], "parameters": {"durationSeconds": 4}},
    )
    uri = sample_uris(op)[0]
    ext = generate(client, {"instances": [{"prompt": "it flies on", "video": {"uri": uri}}]})
    facts = video_facts(download(client, sample_uris(ext)[0], tmp_path / "ext.mp4"))
    assert facts.frames == (4 + 7) * 24
    assert (facts.width, facts.height) == (1280, 720)
    # The same video sent as bytes works too (the server recorded its sha256 when it stored it).
    data = client.get(uri).content
    ext2 = generate(
        client,
        {
            "instances": [
                {
                    "prompt": "again",
                    "video": {"inlineData": {"mimeType": "video/mp4", "data": b64(data)}},
                }
            ]
        },
    )
    assert video_facts(download(client, sample_uris(ext2)[0], tmp_path / "e2.mp4")).frames == 264


def test_download_supports_range(client: httpx.Client) -> None:
    op = generate(
        client, {"instances": [{"prompt": "waves"}], "parameters": {"durationSeconds": 4}}
    )
    uri = sample_uris(op)[0]
    full = client.get(uri).content
    part = client.get(uri, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == full[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(full)}"
    # The path the SDKs build from an http:// uri is served too.
    mangled = client.get(f"/v1beta/files/{uri}:download", params={"alt": "media:download"})
    assert mangled.status_code == 200 and mangled.content == full


def test_list_operations_pages_newest_first(client: httpx.Client) -> None:
    names = []
    for index in range(3):
        response = create(
            client,
            {"instances": [{"prompt": f"list {index}"}], "parameters": {"durationSeconds": 4}},
        )
        names.append(response.json()["name"])
    seen: list[str] = []
    token = None
    while True:
        params = {"pageSize": 2, **({"pageToken": token} if token else {})}
        body = client.get("/v1beta/operations", params=params).json()
        seen += [op["name"] for op in body["operations"]]
        token = body.get("nextPageToken")
        if not token:
            break
    positions = [seen.index(n) for n in names]
    assert positions == sorted(positions, reverse=True)  # newest first
    assert len(seen) == len(set(seen))
    for name in names:
        wait_done(client, name)


def test_cancel_stops_a_running_operation(client: httpx.Client) -> None:
    response = create(
        client, {"instances": [{"prompt": "a long 4k shot"}], "parameters": {"resolution": "4k"}}
    )
    name = response.json()["name"]
    cancel = client.post(f"/v1beta/{name}:cancel")
    assert cancel.status_code == 200 and cancel.json() == {}
    op = wait_done(client, name)
    assert op["error"]["code"] == 1
    assert "response" not in op


def test_delete_removes_operation_and_files(client: httpx.Client) -> None:
    op = generate(
        client, {"instances": [{"prompt": "delete me"}], "parameters": {"durationSeconds": 4}}
    )
    uri = sample_uris(op)[0]
    assert client.delete(f"/v1beta/{op['name']}").status_code == 200
    assert client.get(f"/v1beta/{op['name']}").status_code == 404
    gone = client.get(uri)
    assert gone.status_code == 404
    assert gone.json()["error"]["status"] == "NOT_FOUND"


def test_progress_moves_while_running(client: httpx.Client) -> None:
    response = create(
        client,
        {"instances": [{"prompt": "slow 1080p pan left"}], "parameters": {"resolution": "1080p"}},
    )
    name = response.json()["name"]
    seen = set()
    while True:
        body = client.get(f"/v1beta/{name}").json()
        seen.add(body["metadata"]["progressPercent"])
        if body.get("done"):
            break
    assert any(0 < p < 100 for p in seen), seen
    assert body["metadata"]["progressPercent"] == 100
