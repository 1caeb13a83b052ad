"""`POST /v1beta/cinegen:verify`: a generated video's report (C2PA valid, untrusted dev signer,
model, seed, tags), an extension's ingredient, a foreign MP4, a tampered one, raw bytes or a
multipart form, and bad input answered 400 in the Google envelope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cinegen.media.encode import encode_clip
from tests.helpers import generate, sample_uris
from tests.media.video_checks import clip_of, textured
from tests.support.app import InProcessServer, in_process

URL = "/v1beta/cinegen:verify"
MODEL = "veo-3.1-generate-preview"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with in_process(tmp_path_factory.mktemp("verify"), workers=1) as app:
        yield app


@pytest.fixture(scope="module")
def made(server: InProcessServer) -> tuple[str, bytes, str]:
    """A 4 s video this server made with seed 77: (its uri, its bytes, its operation)."""
    body = {
        "instances": [{"prompt": "a lighthouse"}],
        "parameters": {"durationSeconds": 4, "seed": 77},
    }
    with server.client() as client:
        op = generate(client, body)
        uri = sample_uris(op)[0]
        return uri, client.get(uri, follow_redirects=True).content, op["name"]


def _verify(server: InProcessServer, data: bytes, **kwargs: Any) -> httpx.Response:
    with server.client() as client:
        if "files" in kwargs:
            return client.post(URL, files=kwargs["files"])
        return client.post(URL, content=data, headers={"content-type": "video/mp4"})


def test_a_generated_video_verifies_with_its_model_and_seed(
    server: InProcessServer, made: tuple[str, bytes, str]
) -> None:
    response = _verify(server, made[1])
    assert response.status_code == 200, response.text
    report = response.json()
    c2pa = report["c2pa"]
    assert (c2pa["present"], c2pa["valid"], c2pa["trusted"]) == (True, True, False)
    assert c2pa["validationErrors"] == []
    assert c2pa["signer"] == "cinegen development signer" and c2pa["signedHere"] is True
    assert (c2pa["model"], c2pa["engine"], c2pa["seed"]) == (MODEL, "preview", 77)
    assert c2pa["actions"][0]["action"] == "c2pa.created"
    assert c2pa["claimGenerator"].startswith("cinegen/")
    assert report["tags"]["cinegen_seed"] == "77" and report["aiGenerated"] is True
    mark = report["watermark"]
    assert mark["found"] is True and mark["madeHere"] is True and mark["bitConfidence"] > 0.95
    assert (mark["operation"], mark["sampleIndex"]) == (made[2], 0)


def test_a_multipart_upload_gives_the_same_report(
    server: InProcessServer, made: tuple[str, bytes, str]
) -> None:
    raw = _verify(server, made[1]).json()
    form = _verify(server, b"", files={"file": ("v.mp4", made[1], "video/mp4")})
    assert form.status_code == 200, form.text
    assert form.json() == raw


def test_an_extension_names_its_input_as_an_ingredient(
    server: InProcessServer, made: tuple[str, bytes, str]
) -> None:
    body = {"instances": [{"prompt": "the light turns", "video": {"uri": made[0]}}]}
    with server.client() as client:
        uri = sample_uris(generate(client, body, model=MODEL))[0]
        extended = client.get(uri, follow_redirects=True).content
    c2pa = _verify(server, extended).json()["c2pa"]
    assert c2pa["valid"] and [a["action"] for a in c2pa["actions"]] == [
        "c2pa.opened",
        "c2pa.edited",
    ]
    (ingredient,) = c2pa["ingredients"]
    assert ingredient["relationship"] == "parentOf" and ingredient["has_manifest"] is True
    assert ingredient["generation"]["seed"] == 77


def test_the_same_extension_twice_is_the_same_file(
    server: InProcessServer, made: tuple[str, bytes, str]
) -> None:
    """Signed, and with its input as an ingredient, an extension still repeats byte for byte."""
    body = {
        "instances": [{"prompt": "again", "video": {"uri": made[0]}}],
        "parameters": {"seed": 5},
    }
    files = []
    with server.client() as client:
        for _ in range(2):
            uri = sample_uris(generate(client, body, model=MODEL))[0]
            files.append(client.get(uri, follow_redirects=True).content)
    assert files[0] == files[1]
    assert _verify(server, files[0]).json()["c2pa"]["valid"]


def test_a_foreign_mp4_has_no_manifest_and_no_tags(server: InProcessServer, tmp_path: Path) -> None:
    path = tmp_path / "foreign.mp4"
    encode_clip(clip_of([textured(64, 36, seed=i) for i in range(6)]), str(path))
    report = _verify(server, path.read_bytes()).json()
    assert report["c2pa"]["present"] is False and report["c2pa"]["valid"] is False
    assert report["aiGenerated"] is False and report["tags"] == {}
    assert report["watermark"]["found"] is False and report["watermark"]["operation"] is None


def test_a_tampered_video_is_invalid(server: InProcessServer, made: tuple[str, bytes, str]) -> None:
    data = bytearray(made[1])
    mdat = data.find(b"mdat")
    for offset in range(500, 520):
        data[mdat + offset] ^= 0x5A
    c2pa = _verify(server, bytes(data)).json()["c2pa"]
    assert c2pa["present"] and not c2pa["valid"]
    assert "assertion.bmffHash.mismatch" in c2pa["validationErrors"]


@pytest.mark.parametrize(
    "body",
    [b"", b"not a video at all", b"\x00\x00\x00\x20ftypisom" + b"\x00" * 40],
    ids=["empty", "text", "ftyp-then-garbage"],
)
def test_what_is_not_an_mp4_is_400_in_the_envelope(server: InProcessServer, body: bytes) -> None:
    response = _verify(server, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")


def test_a_form_without_the_file_field_is_400(server: InProcessServer) -> None:
    response = _verify(server, b"", files={"video": ("v.mp4", b"x", "video/mp4")})
    assert response.status_code == 400
    assert "`file`" in response.json()["error"]["message"]


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    with in_process(tmp_path / "small", workers=0, max_request_bytes=1000) as small:
        response = _verify(small, b"\x00" * 2000)
    assert response.status_code == 413
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_keys_apply(tmp_path: Path, made: tuple[str, bytes, str]) -> None:
    with in_process(tmp_path / "keyed", workers=0) as keyed:
        key = keyed.add_key()
        with keyed.client() as client:
            assert client.post(URL, content=made[1]).status_code == 401
            ok = client.post(URL, content=made[1], headers={"x-goog-api-key": key})
    assert ok.status_code == 200
    assert ok.json()["c2pa"]["signedHere"] is False  # another installation's certificate
    assert ok.json()["watermark"]["found"] and not ok.json()["watermark"]["madeHere"]


def test_the_operation_is_named_only_to_a_key_that_sees_it(tmp_path: Path) -> None:
    with in_process(tmp_path / "keys", workers=1) as keyed:
        owner, other = keyed.add_key("owner"), keyed.add_key("other")
        body = {"instances": [{"prompt": "a bell"}], "parameters": {"durationSeconds": 4}}
        with keyed.client(headers={"x-goog-api-key": owner}) as client:
            op = generate(client, body)
            video = client.get(sample_uris(op)[0], follow_redirects=True).content
        marks = {}
        for key in (owner, other):
            with keyed.client(headers={"x-goog-api-key": key}) as client:
                marks[key] = client.post(URL, content=video).json()["watermark"]
    assert marks[owner]["madeHere"] and marks[owner]["operation"] == op["name"]
    assert marks[other]["madeHere"] and marks[other]["operation"] is None
