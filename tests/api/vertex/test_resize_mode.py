"""`resizeMode` acted upon (issue 30): a 1:1 first frame into a 16:9 720p video. `pad` keeps
the whole image between black bars, `crop` fills the frame with its centre; Vertex's default is
`pad`, the Gemini dialect keeps cinegen's crop unless the request names a mode. Measured on
frame 0 of the MP4, through Vertex REST and the Gemini dialect (both take `resizeMode`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.api.vertex.support import inline_videos, vcreate, vwait
from tests.helpers import b64, create, first_and_last_frames, operation, psnr, sample_uris
from tests.support.app import InProcessServer, in_process, op_id

SIDE = 480  # the square input
WIDTH, HEIGHT = 1280, 720
LEFT = (WIDTH - HEIGHT) // 2  # 280: where the padded image starts


def square_image() -> np.ndarray:
    """Smooth ramps (red across, green down) with a blue disc: every crop of it differs."""
    ramp = np.linspace(0, 255, SIDE, dtype=np.float64)
    img = np.zeros((SIDE, SIDE, 3), np.uint8)
    img[..., 0] = ramp[None, :].astype(np.uint8)
    img[..., 1] = ramp[:, None].astype(np.uint8)
    img[..., 2] = 60
    cv2.circle(img, (SIDE // 2, SIDE // 3), SIDE // 8, (40, 40, 230), -1, cv2.LINE_AA)
    return img


def png(img: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="PNG")
    return out.getvalue()


def padded_centre(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (HEIGHT, HEIGHT), interpolation=cv2.INTER_CUBIC)


def cropped(img: np.ndarray) -> np.ndarray:
    cover = cv2.resize(img, (WIDTH, WIDTH), interpolation=cv2.INTER_CUBIC)
    top = (WIDTH - HEIGHT) // 2
    return cover[top : top + HEIGHT]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "data", workers=0) as server:
        yield server


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _body(image: dict, resize_mode: str | None) -> dict:
    parameters: dict = {"durationSeconds": 4, "aspectRatio": "16:9", "resolution": "720p"}
    if resize_mode is not None:
        parameters["resizeMode"] = resize_mode
    return {"instances": [{"prompt": "a still", "image": image}], "parameters": parameters}


def vertex_first_frame(
    server: InProcessServer, client: httpx.Client, resize_mode: str | None, tmp_path: Path
) -> np.ndarray:
    image = {"bytesBase64Encoded": b64(png(square_image())), "mimeType": "image/png"}
    created = vcreate(client, _body(image, resize_mode), model="veo-3.1-generate-preview")
    assert created.status_code == 200, created.text
    name = created.json()["name"]
    server.run(op_id(name))
    path = tmp_path / "vertex.mp4"
    path.write_bytes(inline_videos(vwait(client, name))[0])
    return first_and_last_frames(path)[0]


def gemini_first_frame(
    server: InProcessServer, client: httpx.Client, resize_mode: str | None, tmp_path: Path
) -> np.ndarray:
    image = {"bytesBase64Encoded": b64(png(square_image())), "mimeType": "image/png"}
    created = create(client, _body(image, resize_mode))
    assert created.status_code == 200, created.text
    name = created.json()["name"]
    server.run(op_id(name))
    download = client.get(sample_uris(operation(client, name))[0])
    assert download.status_code == 200, download.text
    path = tmp_path / "gemini.mp4"
    path.write_bytes(download.content)
    return first_and_last_frames(path)[0]


def assert_padded(frame: np.ndarray) -> None:
    """The whole image in the centre 720x720, black bars left and right."""
    assert frame.shape == (HEIGHT, WIDTH, 3)
    assert psnr(frame[:, LEFT : LEFT + HEIGHT], padded_centre(square_image())) >= 35
    bars = np.concatenate([frame[:, : LEFT - 4], frame[:, LEFT + HEIGHT + 4 :]], axis=1)
    assert float(bars.max()) <= 8, "the bars are black"


def assert_cropped(frame: np.ndarray) -> None:
    """The frame filled with the input's centre: no bars."""
    assert frame.shape == (HEIGHT, WIDTH, 3)
    assert psnr(frame, cropped(square_image())) >= 35
    assert float(frame[:, :LEFT].mean()) > 40 and float(frame[:, -LEFT:].mean()) > 40


@pytest.mark.parametrize("mode", ["pad", "PAD", None])
def test_vertex_pad_keeps_the_whole_image(
    server: InProcessServer, client: httpx.Client, tmp_path: Path, mode: str | None
) -> None:
    """`pad` in either case, and Vertex's default."""
    assert_padded(vertex_first_frame(server, client, mode, tmp_path))


def test_vertex_crop_fills_the_frame(
    server: InProcessServer, client: httpx.Client, tmp_path: Path
) -> None:
    frame = vertex_first_frame(server, client, "CROP", tmp_path)
    assert_cropped(frame)
    assert psnr(frame[:, LEFT : LEFT + HEIGHT], padded_centre(square_image())) < 25


def test_gemini_takes_resize_mode_and_keeps_crop_by_default(
    server: InProcessServer, client: httpx.Client, tmp_path: Path
) -> None:
    assert_padded(gemini_first_frame(server, client, "pad", tmp_path))
    assert_cropped(gemini_first_frame(server, client, None, tmp_path))


@pytest.mark.parametrize("mode", ["stretch", "", "pad crop"])
def test_other_values_are_refused(client: httpx.Client, mode: str) -> None:
    image = {"bytesBase64Encoded": b64(png(square_image())), "mimeType": "image/png"}
    for response in (
        vcreate(client, _body(image, mode), model="veo-3.1-generate-preview"),
        create(client, _body(image, mode)),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == {
            "code": 400,
            "message": f"The string value `{mode}` for `resizeMode` is invalid",
            "status": "INVALID_ARGUMENT",
        }
