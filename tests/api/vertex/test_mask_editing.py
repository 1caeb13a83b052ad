"""Vertex's masked editing (`instances[0].video` + `instances[0].mask`) through REST: the body
as google-genai sends it (the mask's image fields inline beside `maskMode`), the edited video
measured, and the refusals (issue 30)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from cinegen.media.encode import encode_clip
from tests.api.vertex.support import inline_videos, vcreate, vfetch
from tests.helpers import b64, create
from tests.media.video_checks import clip_of, textured
from tests.support.app import InProcessServer, in_process, op_id

MODEL = "veo-2.0-generate-exp"
W, H = 1280, 720
FRAMES = 30
SIDE = 120


def _square_at(index: int) -> tuple[int, int]:
    return 100 + 24 * index, 300


def _background() -> np.ndarray:
    return textured(W, H, seed=9)


def _video(tmp_path: Path) -> bytes:
    """A still picture with a red square crossing it, 720p, 1.25 s."""
    frames = []
    for index in range(FRAMES):
        frame = _background().copy()
        x, y = _square_at(index)
        frame[y : y + SIDE, x : x + SIDE] = (230, 30, 40)
        frames.append(frame)
    path = tmp_path / "input.mp4"
    encode_clip(clip_of(frames), str(path))
    return path.read_bytes()


def _mask_png(x: int, y: int, w: int, h: int) -> bytes:
    mask = np.zeros((H, W), np.uint8)
    mask[y : y + h, x : x + w] = 255
    return cv2.imencode(".png", mask)[1].tobytes()


def _body(video: bytes, mode: str | None, prompt: str | None = None, **mask: object) -> dict:
    instance: dict = {"video": {"bytesBase64Encoded": b64(video), "mimeType": "video/mp4"}}
    x0, y0 = _square_at(0)
    fields = {"bytesBase64Encoded": b64(_mask_png(x0 - 8, y0 - 8, SIDE + 16, SIDE + 16))}
    fields["mimeType"] = "image/png"
    if mode is not None:
        fields["maskMode"] = mode
    instance["mask"] = {**fields, **mask}
    if prompt is not None:
        instance["prompt"] = prompt
    return {"instances": [instance]}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "data", workers=0) as server:
        yield server


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def video(server: InProcessServer, tmp_path: Path) -> bytes:
    """The input, its sha256 recorded as the server records the MP4s it makes."""
    data = _video(tmp_path)
    server.db.record_made_video(hashlib.sha256(data).hexdigest(), "0" * 16)
    return data


def _frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _edited(server: InProcessServer, client: httpx.Client, body: dict) -> list[np.ndarray]:
    created = vcreate(client, body, MODEL)
    assert created.status_code == 200, created.text
    name = created.json()["name"]
    server.run(op_id(name))
    done = vfetch(client, name).json()
    assert done.get("done"), done
    return _frames(inline_videos(done)[0])


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("mode", ["REMOVE", "remove"])
def test_remove_takes_the_tracked_object_out_of_every_frame(
    server: InProcessServer, client: httpx.Client, video: bytes, mode: str
) -> None:
    given = _frames(video)
    out = _edited(server, client, _body(video, mode))
    assert len(out) == len(given) == FRAMES  # an edit, as long as its input: no extension
    assert out[0].shape == (H, W, 3)
    background = _background()
    for index, frame in enumerate(out):
        x, y = _square_at(index)
        where = (slice(y, y + SIDE), slice(x, x + SIDE))
        assert _mean_abs_diff(given[index][where], background[where]) > 60
        assert _mean_abs_diff(frame[where], background[where]) < 12, index


def test_outpaint_keeps_the_input_inside_the_rectangle(
    server: InProcessServer, client: httpx.Client, video: bytes
) -> None:
    x, y, w, h = 320, 180, 640, 360
    body = _body(video, "OUTPAINT", prompt="a harbour at dusk")
    body["instances"][0]["mask"]["bytesBase64Encoded"] = b64(_mask_png(x, y, w, h))
    out = _edited(server, client, body)
    given = _frames(video)
    assert len(out) == FRAMES
    for index in (0, FRAMES - 1):
        expected = cv2.resize(given[index], (w, h), interpolation=cv2.INTER_AREA)
        error = np.mean((out[index][y : y + h, x : x + w].astype(float) - expected) ** 2)
        assert 10 * np.log10(255**2 / error) >= 35  # twice encoded: the engine's own is exact
        outside = out[index].copy()
        outside[y : y + h, x : x + w] = 0
        assert outside.mean() > 20


def _refusal(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    return error["message"]


def test_a_mask_without_a_video_is_refused(client: httpx.Client) -> None:
    body = {
        "instances": [
            {
                "prompt": "a kite",
                "mask": {"bytesBase64Encoded": b64(_mask_png(0, 0, 9, 9)), "maskMode": "INSERT"},
            }
        ]
    }
    assert _refusal(vcreate(client, body, MODEL)) == (
        "`mask` needs an input `video`: a mask edits a video (insert, remove or outpaint "
        "objects). Please provide `video`, or remove `mask`."
    )


def test_an_unknown_mask_mode_is_refused(client: httpx.Client, video: bytes) -> None:
    message = _refusal(vcreate(client, _body(video, "ERASE"), MODEL))
    assert message == "The string value `ERASE` for `maskMode` is invalid"


def test_a_mask_without_its_mode_is_refused(client: httpx.Client, video: bytes) -> None:
    message = _refusal(vcreate(client, _body(video, None), MODEL))
    assert message == (
        "`mask.maskMode` is required with `mask`. "
        "Please provide one of INSERT, REMOVE, REMOVE_STATIC, OUTPAINT."
    )


def test_insert_needs_a_prompt(client: httpx.Client, video: bytes) -> None:
    message = _refusal(vcreate(client, _body(video, "INSERT"), MODEL))
    assert message.startswith("A prompt is required to insert an object into a video.")


@pytest.mark.parametrize("model", ["veo-3.1-generate-001", "veo-2.0-generate-001"])
def test_a_model_that_does_not_edit_refuses_the_mask(
    client: httpx.Client, video: bytes, model: str
) -> None:
    message = _refusal(vcreate(client, _body(video, "REMOVE"), model))
    assert message == (
        "`mask` isn't supported by this model. "
        "Please remove it or refer to the Gemini API documentation for supported usage."
    )


def test_the_gemini_api_refuses_a_mask(client: httpx.Client, video: bytes) -> None:
    """The Gemini API has no masks (google-genai refuses `mask` there before sending)."""
    message = _refusal(create(client, _body(video, "REMOVE"), MODEL))
    assert message.startswith("`mask` isn't supported by this model.")


def test_a_row_the_diffusers_engine_serves_refuses_the_mask_at_submit() -> None:
    """A row the diffusers engine serves with no `edit` pipeline refuses the mask before a job."""
    from cinegen.core.catalog import MODELS, Catalog, served_by
    from cinegen.core.request import GenerateRequest, MediaRef
    from cinegen.core.rules import RuleError, check

    catalog = Catalog()
    catalog.add(served_by(MODELS[MODEL], "diffusers", ""))
    req = GenerateRequest(
        model=MODEL,
        video=MediaRef(file_id="abc"),
        mask=MediaRef(data=b"png"),
        mask_mode="REMOVE",
        dialect="vertex",
    )
    assert check(req).mask_mode == "REMOVE"  # the preview engine's row takes it
    with pytest.raises(RuleError, match="^`mask` isn't supported by this model"):
        check(req, catalog=catalog)
