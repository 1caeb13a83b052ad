"""Masked editing through google-genai 3.x in Vertex mode (issue 30): the SDK's own
`GenerateVideosConfig(mask=VideoGenerationMask(...))` on a video the server made, the edited
video measured."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.api.vertex.support import GENAI3_VERSION
from tests.clients.seed_harness import (
    API_KEY,
    SAMPLE_TIMEOUT_S,
    Run,
    client_env,
    describe,
    run_process,
)
from tests.media.video_checks import decoded_frames, psnr
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("vertex")

RECT = (320, 180, 640, 360)  # x, y, w, h: where the input goes in the outpainted frame

DRIVER = """\
import json, time
from google import genai
from google.genai import types

client = genai.Client()


def wait(operation):
    while not operation.done:
        time.sleep(0.5)
        operation = client.operations.get(operation)
    assert operation.error is None, operation.error
    return operation


made = wait(client.models.generate_videos(
    model="veo-2.0-generate-exp", prompt="a quiet city street at noon",
    config=types.GenerateVideosConfig(duration_seconds=5),
))
prior = made.response.generated_videos[0].video
open("prior.mp4", "wb").write(prior.video_bytes)
edited = wait(client.models.generate_videos(
    model="veo-2.0-generate-exp",
    source=types.GenerateVideosSource(prompt="a harbour at dusk", video=prior),
    config=types.GenerateVideosConfig(mask=types.VideoGenerationMask(
        image=types.Image(image_bytes=open("mask.png", "rb").read(), mime_type="image/png"),
        mask_mode=types.VideoGenerationMaskMode.OUTPAINT,
    )),
))
edited.response.generated_videos[0].video.save("edited.mp4")
print("RESULT " + json.dumps({"sdk": genai.__version__, "name": edited.name}))
"""


def test_outpaint_through_google_genai_in_vertex_mode(
    vertex_server: ServerProcess, genai3_python: Path, tmp_path: Path
) -> None:
    (tmp_path / "driver.py").write_text(DRIVER)
    x, y, w, h = RECT
    mask = np.zeros((720, 1280), np.uint8)
    mask[y : y + h, x : x + w] = 255
    (tmp_path / "mask.png").write_bytes(cv2.imencode(".png", mask)[1].tobytes())
    env = client_env(
        {
            "GOOGLE_GENAI_USE_VERTEXAI": "true",
            "GOOGLE_API_KEY": API_KEY,
            "GOOGLE_GEMINI_BASE_URL": vertex_server.url,
        }
    )
    argv = [str(genai3_python), "-u", "driver.py"]
    run = run_process(Run("mask-outpaint", tmp_path, argv), env, SAMPLE_TIMEOUT_S)
    assert run.returncode == 0, describe(run, vertex_server.log())
    out = json.loads(next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert out["sdk"] == GENAI3_VERSION
    prior = decoded_frames(str(tmp_path / "prior.mp4"))
    edited = decoded_frames(str(tmp_path / "edited.mp4"))
    assert len(edited) == len(prior) == 120  # as long as the input: an edit, not an extension
    for index in (0, 60, 119):
        expected = cv2.resize(prior[index], (w, h), interpolation=cv2.INTER_AREA)
        assert psnr(edited[index][y : y + h, x : x + w], expected) >= 35, index
        outside = edited[index].copy()
        outside[y : y + h, x : x + w] = 0
        assert float(np.mean(outside)) > 20  # the rest is made, not left black
