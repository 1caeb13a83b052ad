"""Vertex parameters (shared/spec/veo-rules.md §2–§4): what each does to the video, and the
exact refusal where a model does not take it."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.api.vertex.support import inline_videos, vcreate, vgenerate
from tests.helpers import b64, first_and_last_frames, png_bytes, psnr, video_facts

pytestmark = pytest.mark.xdist_group("vertex")

NOT_SUPPORTED = (
    "`{}` isn't supported by this model. "
    "Please remove it or refer to the Gemini API documentation for supported usage."
)
USE_CASE = (
    "Your use case is currently not supported. "
    "Please refer to Gemini API documentation for current model offering."
)


def _body(prompt: str = "A red kite over hills", **params: object) -> dict:
    return {"instances": [{"prompt": prompt}], "parameters": {"durationSeconds": 4, **params}}


def _image(color: tuple[int, int, int] = (30, 90, 200)) -> dict:
    return {"bytesBase64Encoded": b64(png_bytes(640, 360, color)), "mimeType": "image/png"}


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("veo-3.0-generate-preview", _body(sampleCount=0),
         "The number value for `sampleCount` is out of bound. Please provide a value between 1 "
         "and 4, inclusive."),
        ("veo-3.0-generate-preview", _body(sampleCount=5), "between 1 and 4, inclusive."),
        ("veo-3.0-generate-preview", _body(seed=4294967296),
         "The number value for `seed` is out of bound. Please provide a value between 0 and "
         "4294967295, inclusive."),
        ("veo-3.0-generate-preview", _body(seed=-1), "between 0 and 4294967295, inclusive."),
        ("veo-3.0-generate-preview", _body(durationSeconds=5),
         "The number value for `durationSeconds` is out of bound. Please provide a value "
         "between 4 and 8, inclusive."),
        ("veo-3.0-generate-preview", _body(aspectRatio="4:3"),
         "`aspectRatio` does not support `4:3` as a valid value. Please refer to the Gemini API "
         "documentation for supported usage."),
        ("veo-3.0-generate-preview", _body(resolution="1080p"),
         "1080p is not supported for a duration of 4 seconds."),
        ("veo-3.0-generate-preview", _body(compressionQuality="best"),
         "The string value `best` for `compressionQuality` is invalid"),
        ("veo-3.0-generate-001", _body(enhancePrompt=True), NOT_SUPPORTED.format("enhancePrompt")),
        ("veo-2.0-generate-001", _body(durationSeconds=8, generateAudio=False),
         NOT_SUPPORTED.format("generateAudio")),
        ("veo-2.0-generate-001", _body(durationSeconds=8, resolution="720p"),
         NOT_SUPPORTED.format("resolution")),
        ("veo-3.0-generate-preview", _body(personGeneration="allow_adult"),
         "allow_adult for personGeneration is currently not supported."),
        ("veo-3.0-generate-preview", _body(personGeneration="dont_allow"),
         "dont_allow for personGeneration is currently not supported."),
        ("veo-2.0-generate-001",
         {"instances": [{"prompt": "p", "image": _image()}],
          "parameters": {"personGeneration": "allow_all"}},
         "allow_all for personGeneration is currently not supported."),
        ("veo-2.0-generate-001",
         {"instances": [{"prompt": "p", "referenceImages": [
             {"image": _image(), "referenceType": "asset"}]}]},
         NOT_SUPPORTED.format("referenceImages")),
        ("veo-3.1-generate-preview",
         {"instances": [{"prompt": "p", "referenceImages": [
             {"image": _image(), "referenceType": "STYLE"}]}]},
         USE_CASE),
        ("veo-2.0-generate-exp",
         {"instances": [{"prompt": "p", "referenceImages": [
             {"image": _image(), "referenceType": "style"},
             {"image": _image(), "referenceType": "style"}]}]},
         USE_CASE),
        ("veo-3.0-generate-preview", _body(generateAudio="yes"),
         "The value type for `generateAudio` needs to be a boolean."),
    ],
)  # fmt: skip
def test_refusals_use_veos_words(vertex_server, model: str, body: dict, message: str) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        response = vcreate(client, body, model=model)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"], error["message"]


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("veo-2.0-generate-001", _body(durationSeconds=5, personGeneration="dont_allow")),
        ("veo-2.0-generate-001", _body(durationSeconds=5, personGeneration="allow_adult")),
        ("veo-3.0-generate-preview",
         {"instances": [{"prompt": "p", "image": _image()}],
          "parameters": {"durationSeconds": 4, "personGeneration": "allow_adult"}}),
        ("veo-3.0-generate-preview", _body(sampleCount="1")),  # proto JSON: ints as strings
    ],
)  # fmt: skip
def test_accepted_per_model_rules(vertex_server, model: str, body: dict) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        op = vgenerate(client, body, model=model)
    assert "error" not in op, op
    assert len(op["response"]["videos"]) == 1


def test_same_seed_same_video_and_other_seed_other_video(vertex_server, tmp_path) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        videos = [
            inline_videos(vgenerate(client, _body(seed=seed)))[0]
            for seed in (4294967295, 4294967295, 12)
        ]
    frames = []
    for index, video in enumerate(videos):
        path = tmp_path / f"{index}.mp4"
        path.write_bytes(video)
        frames.append(first_and_last_frames(path)[1])
    assert np.array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])


def test_generate_audio_false_has_no_audio_track(vertex_server, tmp_path) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        silent = inline_videos(vgenerate(client, _body(generateAudio=False)))[0]
        loud = inline_videos(vgenerate(client, _body(generateAudio=True)))[0]
    (tmp_path / "silent.mp4").write_bytes(silent)
    (tmp_path / "loud.mp4").write_bytes(loud)
    assert video_facts(tmp_path / "silent.mp4").audio_rate is None
    assert video_facts(tmp_path / "loud.mp4").audio_rate == 48000


def test_lossless_is_larger_and_closer_to_the_source(vertex_server, tmp_path) -> None:
    """Same seed: `optimized` is a lossy copy of what `lossless` keeps exactly."""
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        small = inline_videos(vgenerate(client, _body(seed=5, compressionQuality="optimized")))[0]
        big = inline_videos(vgenerate(client, _body(seed=5, compressionQuality="LOSSLESS")))[0]
    (tmp_path / "o.mp4").write_bytes(small)
    (tmp_path / "l.mp4").write_bytes(big)
    print(f"optimized {len(small)} B, lossless {len(big)} B, ratio {len(big) / len(small):.2f}")
    assert len(big) > 1.5 * len(small)
    lossy = psnr(first_and_last_frames(tmp_path / "o.mp4")[1],
                 first_and_last_frames(tmp_path / "l.mp4")[1])  # fmt: skip
    assert lossy < 60, lossy  # optimized differs from the lossless frames


def test_enhance_prompt_is_recorded_in_metadata(vertex_server) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        op = vgenerate(client, _body(enhancePrompt=True))
    note = op["metadata"]["notes"]["enhancePrompt"]
    assert "no prompt enhancer" in note and "used as given" in note


def test_vertex_only_fields_are_accepted(vertex_server, tmp_path) -> None:
    """fps, resizeMode, pubsubTopic and labels as the SDK sends them: accepted. (A mask
    edits a video: test_mask_editing.py.)"""
    body = {
        "instances": [{"prompt": "everything", "image": _image((200, 30, 30))}],
        "parameters": {"durationSeconds": 4, "fps": 24, "resizeMode": "PAD",
                       "pubsubTopic": "projects/p/topics/t", "personGeneration": "allow_adult",
                       "negativePrompt": "blurry", "aspectRatio": "9:16"},
        "labels": {"team": "x"},
    }  # fmt: skip
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        op = vgenerate(client, body)
    path = tmp_path / "all.mp4"
    path.write_bytes(inline_videos(op)[0])
    facts = video_facts(path)
    assert (facts.width, facts.height, facts.fps) == (720, 1280, 24.0)


def test_style_reference_on_veo_2_exp(vertex_server, tmp_path) -> None:
    body = {
        "instances": [{"prompt": "A city street", "referenceImages": [
            {"image": _image((240, 200, 20)), "referenceType": "style"}]}],
        "parameters": {"durationSeconds": 8},
    }  # fmt: skip
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        op = vgenerate(client, body, model="veo-2.0-generate-exp")
    path = tmp_path / "style.mp4"
    path.write_bytes(inline_videos(op)[0])
    facts = video_facts(path)
    assert (facts.width, facts.height, facts.frames, facts.audio_rate) == (1280, 720, 192, None)


def test_sample_count_four(vertex_server) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=120) as client:
        op = vgenerate(client, _body(sampleCount=4, resolution="720p"))
    videos = inline_videos(op)
    assert len(videos) == 4 and len(set(videos)) == 4
