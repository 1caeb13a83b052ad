"""`instances[0].cameraControl` through Vertex REST (issue 30): the move measured on the MP4,
and each refusal in the rules' words; the Gemini dialect, whose API has no such field, refuses
the name as unknown.

Vertex's reference (VideoGenerationModelInstance): "Camera motion to use in generated videos.
An input image must also be provided." Accepted on the Veo 2 rows (rules.CAMERA_CONTROLS).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from cinegen.core.request import GenerateRequest
from cinegen.service.codec import request_from_json, request_to_json
from tests.api.vertex.support import inline_videos, vcreate, vwait
from tests.helpers import b64, first_and_last_frames
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.camera import ground_band, landscape, shift, sky_band

MODEL = "veo-2.0-generate-001"
GEMINI = f"/v1beta/models/{MODEL}:predictLongRunning"
WIDTH, HEIGHT = 1280, 720
NOT_SUPPORTED = (
    "`cameraControl` isn't supported by this model. "
    "Please remove it or refer to the Gemini API documentation for supported usage."
)
USE_CASE = (
    "Your use case is currently not supported. "
    "Please refer to Gemini API documentation for current model offering."
)
NEEDS_IMAGE = (
    "`cameraControl` requires an input image. Please provide `image`, or remove `cameraControl`."
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "data", workers=0) as server:
        yield server


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _png(img: np.ndarray) -> dict[str, str]:
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="PNG")
    return {"bytesBase64Encoded": b64(out.getvalue()), "mimeType": "image/png"}


IMAGE = landscape(WIDTH, HEIGHT)


def _body(instance: dict, **parameters: object) -> dict:
    return {
        "instances": [{"prompt": "a meadow under clouds", **instance}],
        "parameters": {"durationSeconds": 5, **parameters},
    }


def _refused(response: httpx.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == message


@pytest.mark.parametrize("name", ["cameraControl", "camera_control"])
def test_pan_right_turns_the_whole_view_left(
    server: InProcessServer, client: httpx.Client, tmp_path: Path, name: str
) -> None:
    """The MP4's last frame against its first: sky and ground moved left by the same amount
    (1280x720, 5 s: the capped travel is 0.114 of the width, 146 px, at the sample's speed
    ±10 %; measured -160 and -149 px, the bands within 0.2 px of each other), and the notes
    name the control."""
    created = vcreate(client, _body({"image": _png(IMAGE), name: "PAN_RIGHT"}), model=MODEL)
    assert created.status_code == 200, created.text
    operation_name = created.json()["name"]
    server.run(op_id(operation_name))
    done = vwait(client, operation_name)
    path = tmp_path / "pan.mp4"
    path.write_bytes(inline_videos(done)[0])
    first, last = first_and_last_frames(path)
    sky = shift(first, last, sky_band(HEIGHT))
    ground = shift(first, last, ground_band(HEIGHT))
    assert ground[0] < -0.08 * WIDTH, ground
    assert abs(sky[0] - ground[0]) < 2.0 and abs(ground[1]) < 1.0, (sky, ground)
    notes = done["metadata"]["notes"]
    assert notes["camera"] == "pan_right"
    assert notes["camera_control"].startswith("pan_right")


@pytest.mark.parametrize(
    ("model", "instance", "message"),
    [
        (MODEL, {"cameraControl": "pan_left"}, NEEDS_IMAGE),
        (MODEL, {"image": {}, "cameraControl": "orbit_left"},
         "`image` has no image bytes"),
        (MODEL, {"image": "IMAGE", "cameraControl": "orbit_left"},
         "The string value `orbit_left` for `cameraControl` is invalid"),
        (MODEL, {"image": "IMAGE", "lastFrame": "IMAGE", "cameraControl": "fixed"}, USE_CASE),
        ("veo-3.1-generate-preview", {"image": "IMAGE", "cameraControl": "pan_left"},
         NOT_SUPPORTED),
        (MODEL, {"image": "IMAGE", "cameraControl": 5},
         "Invalid value at 'instances[0].cameraControl' (TYPE_STRING), 5"),
    ],
)  # fmt: skip
def test_refusals(client: httpx.Client, model: str, instance: dict, message: str) -> None:
    small = _png(landscape(64, 36))
    instance = {k: small if v == "IMAGE" else v for k, v in instance.items()}
    response = vcreate(client, _body(instance, durationSeconds=8), model=model)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith(message), response.text


@pytest.mark.parametrize("name", ["cameraControl", "camera_control"])
def test_the_gemini_api_has_no_camera_control(client: httpx.Client, name: str) -> None:
    """Refused as Google's parser refuses any unknown name, by the name sent; nothing starts."""
    body = _body({"image": _png(landscape(64, 36)), name: "pan_left"}, durationSeconds=8)
    response = client.post(GEMINI, json=body)
    sentence = (
        f"Invalid JSON payload received. Unknown name \"{name}\" at 'instances[0]': "
        "Cannot find field."
    )
    _refused(response, sentence)
    violations = response.json()["error"]["details"][0]["fieldViolations"]
    assert violations == [{"field": "instances[0]", "description": sentence}]
    listed = client.get("/v1beta/operations")
    assert listed.status_code == 200 and not listed.json().get("operations")


def test_the_stored_request_keeps_the_control() -> None:
    req = GenerateRequest(model=MODEL, prompt="p", camera_control="truck_left")
    assert request_from_json(request_to_json(req)).camera_control == "truck_left"
