"""Vertex's extension bounds (issue 30): an input of 1 to 30 s, so at most 37 s once extended
by 7 s (https://docs.cloud.google.com/vertex-ai/generative-ai/docs/video/extend-a-veo-video);
the Gemini API's 141 s input (148 s chain) stays for the Gemini dialect.

The inputs are 720p clips made here at 1 fps (a few frames stand for many seconds) and their
sha256 recorded as if the server had made them, as in tests/service/test_extension_limits.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cinegen.core import rules
from cinegen.core.catalog import EXTENSION_SECONDS
from tests.api.vertex.support import inline_videos, vcreate, vwait
from tests.helpers import b64, create, video_facts
from tests.service.test_extension_limits import as_if_made_by, tagged_mp4
from tests.support.app import InProcessServer, in_process, op_id

VERTEX_BOUNDS = (
    "Veo on Vertex AI extends videos that are 1 to 30 seconds in length, 720p, 16:9 or 9:16; "
    "the extended video is at most 37 seconds long."
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "data", workers=0) as server:
        yield server


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def extend_vertex(client: httpx.Client, video: bytes) -> httpx.Response:
    instance = {
        "prompt": "go on",
        "video": {"bytesBase64Encoded": b64(video), "mimeType": "video/mp4"},
    }
    body = {"instances": [instance], "parameters": {"durationSeconds": 8, "resolution": "720p"}}
    return vcreate(client, body, model="veo-3.1-generate-preview")


def extend_gemini(client: httpx.Client, video: bytes) -> httpx.Response:
    instance = {"prompt": "go on", "video": {"encodedVideo": b64(video), "encoding": "video/mp4"}}
    body = {"instances": [instance], "parameters": {"durationSeconds": 8, "resolution": "720p"}}
    return create(client, body)


def refusal(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    return str(error["message"])


def clip(server: InProcessServer, seconds: float, fps: int = 1) -> bytes:
    """A 1280x720 clip of `seconds` at `fps`, registered as made by `server`."""
    return as_if_made_by(server, tagged_mp4(1280, 720, round(seconds * fps), fps))


def test_31_s_is_refused_on_vertex_and_accepted_on_gemini(
    server: InProcessServer, client: httpx.Client
) -> None:
    video = clip(server, 31)
    assert refusal(extend_vertex(client, video)) == (
        "The input video cannot be extended: the input video is 31.0 s long; it must be at "
        f"most 30 s. {VERTEX_BOUNDS}"
    )
    response = extend_gemini(client, video)
    assert response.status_code == 200, response.text


def test_half_a_second_is_refused_on_vertex_and_accepted_on_gemini(
    server: InProcessServer, client: httpx.Client
) -> None:
    video = clip(server, 0.5, fps=24)
    assert refusal(extend_vertex(client, video)) == (
        "The input video cannot be extended: the input video is 0.5 s long; it must be at "
        f"least 1 s. {VERTEX_BOUNDS}"
    )
    response = extend_gemini(client, video)
    assert response.status_code == 200, response.text


def test_30_s_is_accepted_on_vertex_and_comes_back_37_s_long(
    server: InProcessServer, client: httpx.Client, tmp_path: Path
) -> None:
    """The longest input Vertex takes, at 24 fps, extended by the engine: 37 s out."""
    response = extend_vertex(client, clip(server, 30, fps=24))
    assert response.status_code == 200, response.text
    name = response.json()["name"]
    server.run(op_id(name))
    path = tmp_path / "extended.mp4"
    path.write_bytes(inline_videos(vwait(client, name))[0])
    facts = video_facts(path)
    assert (facts.width, facts.height, facts.frames, facts.fps) == (1280, 720, 888, 24.0)
    assert facts.frames / facts.fps == rules.VERTEX_MAX_EXTENDED_SECONDS == 30 + EXTENSION_SECONDS


def test_1_s_is_accepted_on_vertex(server: InProcessServer, client: httpx.Client) -> None:
    response = extend_vertex(client, clip(server, 1, fps=24))
    assert response.status_code == 200, response.text


def test_vertex_bounds_frames_too(server: InProcessServer, client: httpx.Client) -> None:
    """721 frames in 1 s: 30.04 s at the 24 fps the engine continues it at."""
    video = as_if_made_by(server, tagged_mp4(16, 16, 721, 721))
    assert refusal(extend_vertex(client, video)) == (
        "The input video cannot be extended: the input video has 721 frames (1.0 s at 721 fps); "
        f"it must have at most 720 frames (30 s at 24 fps). {VERTEX_BOUNDS}"
    )


def test_an_input_not_made_here_is_refused_in_vertex_words(client: httpx.Client) -> None:
    video = tagged_mp4(1280, 720, 3, 24)  # never recorded by this server
    assert refusal(extend_vertex(client, video)) == (
        "The input video cannot be extended: only videos generated by this server can be "
        f"extended. {VERTEX_BOUNDS}"
    )
