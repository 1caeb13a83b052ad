"""The new Vertex modes through google-genai 3.x in Vertex mode (issue 30), as users drive them:
`GenerateVideosConfig(resize_mode="pad" | "crop")` on a square first frame into a 16:9 video
(frame 0 measured, as tests/api/vertex/test_resize_mode.py measures the REST route), and
Vertex's extension bounds (1 to 30 s) met through `GenerateVideosSource(video=...)`.

Only videos this server made can be extended; the clips here are made by the test, so their
sha256 is recorded in the running server's database (the one `cinegen serve` opens for its
data dir) as the server records the MP4s it stores, as tests/service/test_extension_limits.py
does in process. google-genai has no camera-control field (3.6.1: no `camera` anywhere in the
package), so `cameraControl` stays a REST-only field (tests/api/vertex/test_camera_control.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from cinegen.store.db import Database
from tests.api.vertex.support import GENAI3_VERSION
from tests.api.vertex.test_extension_bounds import VERTEX_BOUNDS
from tests.api.vertex.test_resize_mode import (
    HEIGHT,
    LEFT,
    assert_cropped,
    assert_padded,
    padded_centre,
    png,
    square_image,
)
from tests.clients.seed_harness import (
    API_KEY,
    SAMPLE_TIMEOUT_S,
    Run,
    client_env,
    describe,
    run_process,
)
from tests.helpers import first_and_last_frames, psnr, video_facts
from tests.service.test_extension_limits import tagged_mp4
from tests.support.app import settings_for
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("vertex")

MODEL = "veo-3.1-generate-preview"

COMMON = f"""\
import json, sys, time
from google import genai
from google.genai import errors, types

client = genai.Client()
MODEL = {MODEL!r}


def wait(operation):
    while not operation.done:
        time.sleep(0.5)
        operation = client.operations.get(operation)
    assert operation.error is None, operation.error
    return operation


def result(**values):
    print("RESULT " + json.dumps({{"sdk": genai.__version__, **values}}))
"""

RESIZE_DRIVER = (
    COMMON
    + """
mode = sys.argv[1]
image = types.Image(image_bytes=open("square.png", "rb").read(), mime_type="image/png")
made = wait(client.models.generate_videos(
    model=MODEL,
    source=types.GenerateVideosSource(prompt="a still", image=image),
    config=types.GenerateVideosConfig(
        duration_seconds=4, aspect_ratio="16:9", resolution="720p", resize_mode=mode
    ),
))
made.response.generated_videos[0].video.save(mode + ".mp4")
result(name=made.name)
"""
)

EXTEND_DRIVER = (
    COMMON
    + """
video = types.Video(video_bytes=open(sys.argv[1], "rb").read(), mime_type="video/mp4")
try:
    operation = client.models.generate_videos(
        model=MODEL,
        source=types.GenerateVideosSource(prompt="go on", video=video),
        config=types.GenerateVideosConfig(duration_seconds=8, resolution="720p"),
    )
except errors.ClientError as exc:
    result(error={"code": exc.code, "status": exc.status, "message": exc.message})
else:
    wait(operation).response.generated_videos[0].video.save("extended.mp4")
    result(error=None)
"""
)


def run_driver(server: ServerProcess, python: Path, cwd: Path, driver: str, *args: str) -> dict:
    """`driver` under google-genai 3.x in Vertex mode against `server`; its RESULT line."""
    (cwd / "driver.py").write_text(driver)
    env = client_env(
        {
            "GOOGLE_GENAI_USE_VERTEXAI": "true",
            "GOOGLE_API_KEY": API_KEY,
            "GOOGLE_GEMINI_BASE_URL": server.url,
        }
    )
    argv = [str(python), "-u", "driver.py", *args]
    run = run_process(Run("new-modes", cwd, argv), env, SAMPLE_TIMEOUT_S)
    assert run.returncode == 0, describe(run, server.log())
    out = json.loads(next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert out["sdk"] == GENAI3_VERSION, out
    return out


def made_by(server: ServerProcess, path: Path, video: bytes) -> Path:
    """`video` written to `path`, its sha256 recorded in `server`'s database as the server
    records the MP4s it stores (the same settings as `cinegen serve` on that data dir)."""
    db = Database(settings_for(server.data_dir).resolved_database_url)
    try:
        db.record_made_video(hashlib.sha256(video).hexdigest(), "0" * 16)
    finally:
        db.engine.dispose()
    path.write_bytes(video)
    return path


@pytest.mark.parametrize("mode", ["pad", "crop"])
def test_resize_mode_through_google_genai(
    vertex_server: ServerProcess, genai3_python: Path, tmp_path: Path, mode: str
) -> None:
    (tmp_path / "square.png").write_bytes(png(square_image()))
    run_driver(vertex_server, genai3_python, tmp_path, RESIZE_DRIVER, mode)
    frame = first_and_last_frames(tmp_path / f"{mode}.mp4")[0]
    if mode == "pad":
        assert_padded(frame)  # the whole image between black bars
    else:
        assert_cropped(frame)  # no bars: the centre fills the frame
        assert psnr(frame[:, LEFT : LEFT + HEIGHT], padded_centre(square_image())) < 25


def test_a_31_s_video_is_refused_in_vertex_words(
    vertex_server: ServerProcess, genai3_python: Path, tmp_path: Path
) -> None:
    """The SDK raises its ClientError with cinegen's Vertex bounds, before any job."""
    video = made_by(vertex_server, tmp_path / "31s.mp4", tagged_mp4(1280, 720, 31, 1))
    out = run_driver(vertex_server, genai3_python, tmp_path, EXTEND_DRIVER, str(video))
    assert out["error"] == {
        "code": 400,
        "status": "INVALID_ARGUMENT",
        "message": "The input video cannot be extended: the input video is 31.0 s long; it "
        f"must be at most 30 s. {VERTEX_BOUNDS}",
    }


def test_a_1_s_video_is_extended_to_8_s(
    vertex_server: ServerProcess, genai3_python: Path, tmp_path: Path
) -> None:
    """The shortest input Vertex takes, extended by 7 s through the SDK."""
    video = made_by(vertex_server, tmp_path / "1s.mp4", tagged_mp4(1280, 720, 24, 24))
    out = run_driver(vertex_server, genai3_python, tmp_path, EXTEND_DRIVER, str(video))
    assert out["error"] is None
    facts = video_facts(tmp_path / "extended.mp4")
    assert (facts.width, facts.height, facts.frames, facts.fps) == (1280, 720, 192, 24.0)


SAMPLES_DRIVER = (
    COMMON
    + """
mode = sys.argv[1]
image = types.Image(image_bytes=open("first.png", "rb").read(), mime_type="image/png")
last = types.Image(image_bytes=open("last.png", "rb").read(), mime_type="image/png")
config = types.GenerateVideosConfig(
    duration_seconds=8 if mode == "interpolation" else 4, aspect_ratio="16:9", resolution="720p",
    number_of_videos=2, seed=7,
    last_frame=last if mode == "interpolation" else None,
)
made = wait(client.models.generate_videos(
    model=MODEL, source=types.GenerateVideosSource(prompt="a slow drift", image=image),
    config=config,
))
for index, generated in enumerate(made.response.generated_videos):
    generated.video.save(f"{mode}_{index}.mp4")
result(count=len(made.response.generated_videos))
"""
)


def _middle_luma(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="gray").astype(np.float64) for f in container.decode(video=0)]
    return frames[len(frames) // 2]


@pytest.mark.parametrize("mode", ["image", "interpolation"])
def test_two_samples_of_one_image_request_differ(
    vertex_server: ServerProcess, genai3_python: Path, tmp_path: Path, mode: str
) -> None:
    """Issue 30, fault 3: `number_of_videos=2` with a first frame (and a last frame) gave two
    copies, every luma frame equal. Each sample now moves its own way from the same frame 0."""
    first = png(square_image())
    (tmp_path / "first.png").write_bytes(first)
    (tmp_path / "last.png").write_bytes(png(square_image()[::-1].copy()))
    out = run_driver(vertex_server, genai3_python, tmp_path, SAMPLES_DRIVER, mode)
    assert out["count"] == 2
    paths = [tmp_path / f"{mode}_{i}.mp4" for i in range(2)]
    firsts = [first_and_last_frames(p)[0] for p in paths]
    assert psnr(firsts[0], firsts[1]) >= 35  # the same given image opens both
    difference = np.abs(_middle_luma(paths[0]) - _middle_luma(paths[1])).mean()
    assert difference > 2.0, difference  # copies measured 0.0 before the fix
