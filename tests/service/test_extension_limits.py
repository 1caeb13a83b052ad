"""The video to extend is bounded by its frames as well as by its duration (issue 31 item 4):
10 s at 240 fps is 2 400 frames, which the engine continues at 24 fps as 100 s of video.

The preview engine makes only 24 fps, so these inputs are made here with PyAV and their sha256
recorded as if the server had made them: the bounds hold for any input, wherever it came from
(tests/service/test_extension_origin.py checks that only videos the server made get that far).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from cinegen.media.provenance import provenance_tags
from tests.helpers import b64, create
from tests.support.app import InProcessServer, in_process


def tagged_mp4(width: int, height: int, frames: int, fps: int) -> bytes:
    """A tiny H.264 MP4 carrying every one of cinegen's provenance tags, at any frame rate."""
    out = io.BytesIO()
    options = {"movflags": "use_metadata_tags"}  # as encode_clip writes the `cinegen_*` keys
    with av.open(out, mode="w", format="mp4", options=options) as container:
        container.metadata.update(provenance_tags("preview", "veo-3.1-generate-preview", 1))
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        black = np.zeros((height, width, 3), np.uint8)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(black, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


def extend(client: httpx.Client, video: bytes) -> httpx.Response:
    body = {
        "instances": [
            {"prompt": "go on", "video": {"encodedVideo": b64(video), "encoding": "video/mp4"}}
        ],
        "parameters": {"durationSeconds": 8, "resolution": "720p"},
    }
    return create(client, body)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "data", workers=0) as server:
        yield server


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def as_if_made_by(server: InProcessServer, video: bytes) -> bytes:
    """`video`, its sha256 recorded as the server records the MP4s it stores."""
    server.db.record_made_video(hashlib.sha256(video).hexdigest(), "0" * 16)
    return video


def test_an_input_of_many_frames_at_a_high_rate_is_refused(
    server: InProcessServer, client: httpx.Client
) -> None:
    # 3 400 frames at 2 400 fps: 1.4 s by the clock, 141.7 s at the 24 fps it is continued at.
    response = extend(client, as_if_made_by(server, tagged_mp4(16, 16, 3400, 2400)))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == (
        "The input video cannot be extended: the input video has 3400 frames (1.4 s at "
        "2400 fps); it must have at most 3384 frames (141 s at 24 fps). The video to extend "
        "must be 720p, 16:9 or 9:16, and at most 141 seconds long."
    )


def test_a_short_720p_input_within_the_bounds_is_accepted(
    server: InProcessServer, client: httpx.Client
) -> None:
    response = extend(client, as_if_made_by(server, tagged_mp4(1280, 720, 3, 24)))
    assert response.status_code == 200, response.text
