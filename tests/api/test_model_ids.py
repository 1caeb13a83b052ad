"""The late-2026 Veo model ids (issue 30): Veo 3.1 Lite (Gemini API preview) and the Vertex GA
ids, each with its own capability row; Veo 3.0's ids still served, flagged deprecated.

Both dialects through the in-process app (tests/support/app.py). The rules for every mode are
tested model by model in tests/core/test_rules.py; here the routes carry them, with Veo's words.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.vertex.support import inline_videos, vcreate, vwait
from tests.helpers import (
    b64,
    create,
    decode_png,
    first_and_last_frames,
    png_bytes,
    psnr,
    sample_uris,
    text_request,
    video_facts,
    wait_done,
)
from tests.support.app import InProcessServer

NOT_SUPPORTED = (
    "`{}` isn't supported by this model. "
    "Please remove it or refer to the Gemini API documentation for supported usage."
)
NO_4K = (
    "`resolution` does not support `4k` as a valid value. "
    "Please refer to the Gemini API documentation for supported usage."
)
LITE = ("veo-3.1-lite-generate-preview", "veo-3.1-lite-generate-001")
GA = ("veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001")
VEO30 = (
    "veo-3.0-generate-001",
    "veo-3.0-generate-preview",
    "veo-3.0-fast-generate-001",
    "veo-3.0-fast-generate-preview",
)
# id: (resolutions, reference images, extension), as the catalog's comment table gives them
CAPS = {
    "veo-3.1-lite-generate-preview": (["720p", "1080p"], 0, False),
    "veo-3.1-generate-001": (["720p", "1080p", "4k"], 3, True),
    "veo-3.1-fast-generate-001": (["720p", "1080p", "4k"], 0, True),
    "veo-3.1-lite-generate-001": (["720p", "1080p"], 0, False),
}


@pytest.fixture
def client(app_server: InProcessServer) -> Iterator[httpx.Client]:
    with app_server.client() as c:
        yield c


def _image(color: tuple[int, int, int]) -> dict:
    return {"bytesBase64Encoded": b64(png_bytes(640, 360, color)), "mimeType": "image/png"}


def _vbody(**instance: object) -> dict:
    return {
        "instances": [{"prompt": "a kite over the hills", **instance}],
        "parameters": {"durationSeconds": 8},
    }


def _created(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["name"]


def _accepted(client: httpx.Client, response: httpx.Response) -> None:
    """Created, then cancelled: the test is about acceptance, not a 4k render's time."""
    op_id = _created(response).rpartition("/operations/")[2]
    assert client.post(f"/v1beta/operations/{op_id}:cancel").status_code == 200


# ----------------------------------------------------------------------------- the catalog


def test_new_ids_listed_with_their_rows(client: httpx.Client) -> None:
    models = {m["name"]: m for m in client.get("/v1beta/models").json()["models"]}
    for model, (resolutions, references, extension) in CAPS.items():
        caps = models[f"models/{model}"]["cinegen"]
        assert caps["resolutions"] == resolutions, model
        assert (caps["referenceImages"], caps["extension"]) == (references, extension), model
        assert (caps["durations"], caps["audio"]) == ([4, 6, 8], "always"), model


@pytest.mark.parametrize("model", VEO30)
def test_veo30_flagged_deprecated(client: httpx.Client, model: str) -> None:
    one = client.get(f"/v1beta/models/{model}")
    assert one.status_code == 200
    replacement = "veo-3.1-fast-generate-001" if "fast" in model else "veo-3.1-generate-001"
    assert (
        f"Deprecated: retired on Vertex AI on 2026-06-30; use {replacement}."
        in one.json()["description"]
    )


@pytest.mark.parametrize("model", [*CAPS, "veo-3.1-generate-preview"])
def test_current_ids_not_deprecated(client: httpx.Client, model: str) -> None:
    assert "Deprecated" not in client.get(f"/v1beta/models/{model}").json()["description"]


# ---------------------------------------------------------------------- Gemini API: Lite


def test_lite_preview_text_to_video(client: httpx.Client, tmp_path: Path) -> None:
    op = wait_done(client, _created(create(client, text_request("a red kite"), LITE[0])))
    assert op["name"].startswith(f"models/{LITE[0]}/operations/")
    (uri,) = sample_uris(op)
    path = tmp_path / "lite.mp4"
    path.write_bytes(client.get(uri, follow_redirects=True).content)
    facts = video_facts(path)
    assert (facts.width, facts.height, facts.frames) == (1280, 720, 4 * 24)
    assert facts.audio_rate is not None  # Veo 3.1's native audio


@pytest.mark.parametrize("model", LITE)
@pytest.mark.parametrize("value", ["4k", "4K"])
def test_lite_refuses_4k_gemini(client: httpx.Client, model: str, value: str) -> None:
    response = create(client, text_request("x", durationSeconds=8, resolution=value), model)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": 400,
        "message": NO_4K,
        "status": "INVALID_ARGUMENT",
    }


@pytest.mark.parametrize("model", LITE)
def test_lite_takes_1080p_gemini(client: httpx.Client, model: str) -> None:
    body = text_request("x", durationSeconds=8, resolution="1080p")
    _accepted(client, create(client, body, model))


@pytest.mark.parametrize("model", LITE)
def test_lite_refuses_reference_images_gemini(client: httpx.Client, model: str) -> None:
    ref = {
        "image": {"inlineData": {"mimeType": "image/png", "data": b64(png_bytes(64, 36))}},
        "referenceType": "asset",
    }
    body = {
        "instances": [{"prompt": "x", "referenceImages": [ref]}],
        "parameters": {"durationSeconds": 8},
    }
    response = create(client, body, model)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == NOT_SUPPORTED.format("referenceImages")


# -------------------------------------------------------------------- Vertex: the GA ids


def test_lite_ga_first_and_last_frame_vertex(client: httpx.Client, tmp_path: Path) -> None:
    first = png_bytes(1280, 720, (30, 90, 200), square=(100, 300))
    last = png_bytes(1280, 720, (200, 120, 30), square=(1000, 300))
    body = _vbody(
        image={"bytesBase64Encoded": b64(first), "mimeType": "image/png"},
        lastFrame={"bytesBase64Encoded": b64(last), "mimeType": "image/png"},
    )
    name = _created(vcreate(client, body, LITE[1]))
    assert f"/publishers/google/models/{LITE[1]}/operations/" in name
    (video,) = inline_videos(vwait(client, name))
    path = tmp_path / "frames.mp4"
    path.write_bytes(video)
    facts = video_facts(path)
    assert (facts.width, facts.height, facts.frames) == (1280, 720, 8 * 24)
    got_first, got_last = first_and_last_frames(path)
    assert psnr(got_first, decode_png(first)) >= 35
    assert psnr(got_last, decode_png(last)) >= 35


@pytest.mark.parametrize("model", LITE)
def test_lite_refuses_4k_vertex(client: httpx.Client, model: str) -> None:
    body = _vbody()
    body["parameters"]["resolution"] = "4k"
    response = vcreate(client, body, model)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == NO_4K


@pytest.mark.parametrize("model", LITE)
def test_lite_refuses_extension_vertex(client: httpx.Client, model: str) -> None:
    video = {"bytesBase64Encoded": b64(b"\x00\x00\x00\x18ftypmp42"), "mimeType": "video/mp4"}
    response = vcreate(client, _vbody(video=video), model)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == NOT_SUPPORTED.format("video")


@pytest.mark.parametrize(
    ("model", "accepted"),
    [("veo-3.1-generate-001", True), ("veo-3.1-fast-generate-001", False), (LITE[1], False)],
)
def test_ga_reference_images_vertex(client: httpx.Client, model: str, accepted: bool) -> None:
    body = _vbody(referenceImages=[{"image": _image((90, 160, 60)), "referenceType": "asset"}])
    response = vcreate(client, body, model)
    if accepted:
        _accepted(client, response)
    else:
        assert response.status_code == 400
        assert response.json()["error"]["message"] == NOT_SUPPORTED.format("referenceImages")


@pytest.mark.parametrize("model", [m for m in GA if "lite" not in m])
def test_ga_takes_4k_vertex(client: httpx.Client, model: str) -> None:
    body = _vbody()
    body["parameters"]["resolution"] = "4k"
    _accepted(client, vcreate(client, body, model))


@pytest.mark.parametrize("model", ["veo-3.0-generate-001", "veo-3.0-fast-generate-001"])
def test_deprecated_ids_still_served_vertex(client: httpx.Client, model: str) -> None:
    body = {"instances": [{"prompt": "a kite"}], "parameters": {"durationSeconds": 4}}
    op = vwait(client, _created(vcreate(client, body, model)))
    assert len(inline_videos(op)) == 1
