"""Native audio: LTX-2 makes the video and its soundtrack in one call, and the MP4 carries that
soundtrack (48 kHz stereo AAC, the clip's exact length), not the procedural one.

Tiny random-weight LTX-2 pipelines (tests/engines/diffusers/tiny.py) are saved to disk and
served through the registry by an in-process server; the pipeline's own waveform is captured by
wrapping the class's `__call__`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diffusers
import httpx
import numpy as np
import pytest

from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from cinegen.engines.diffusers.audio import procedural, to_stereo_48k
from cinegen.engines.soundtrack import fit_length
from cinegen.media.clip import AUDIO_RATE
from cinegen.media.decode import read_audio
from tests.engines.diffusers.tiny import save_ltx2
from tests.helpers import b64, generate, png_bytes, sample_uris, text_request, video_facts
from tests.support.app import in_process
from tests.support.diffusers import ltx2_registry_toml

pytestmark = pytest.mark.xdist_group("diffusers")

MODEL = "veo-3.1-fast-generate-preview"
PROMPT = "rain on the sea at night"
SEED = 7


@pytest.fixture(scope="module")
def heard() -> list[tuple[np.ndarray, int]]:
    """Every waveform an LTX-2 pipeline returned in this module, with its sample rate, in the
    order of the calls."""
    return []


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, heard: list[tuple[np.ndarray, int]]
) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("ltx2")
    registry = root / "registry.toml"
    registry.write_text(ltx2_registry_toml(save_ltx2(root / "ckpt")))
    with pytest.MonkeyPatch.context() as patch:
        classes = (
            diffusers.LTX2Pipeline,
            diffusers.LTX2ImageToVideoPipeline,
            diffusers.LTX2ConditionPipeline,
        )
        for cls in classes:
            patch.setattr(cls, "__call__", _recording(cls.__call__, heard))
        settings = {"diffusers_registry": registry, "diffusers_device": "cpu"}
        with in_process(root / "data", workers=1, **settings) as server, server.client() as c:
            yield c


def _recording(original: Any, heard: list[tuple[np.ndarray, int]]) -> Any:
    def recording(pipe: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(pipe, *args, **kwargs)
        audio = out.audio[0].detach().float().cpu().numpy()
        heard.append((audio, int(pipe.vocoder.config.output_sampling_rate)))
        return out

    return recording


def download(client: httpx.Client, op: dict, path: Path) -> Path:
    response = client.get(sample_uris(op)[0], follow_redirects=True)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    x, y = a[:n].ravel(), b[:n].ravel()
    return float(np.corrcoef(x, y)[0, 1])


def test_text_request_muxes_the_pipelines_own_soundtrack(
    client: httpx.Client, heard: list[tuple[np.ndarray, int]], tmp_path: Path
) -> None:
    heard.clear()
    op = generate(client, text_request(PROMPT, seed=SEED, generateAudio=True), MODEL)
    path = download(client, op, tmp_path / "ltx2.mp4")
    facts = video_facts(path)
    assert (facts.frames, facts.fps) == (96, 24.0)
    assert (facts.audio_rate, facts.audio_channels) == (48000, 2)
    notes = op["metadata"]["notes"]
    assert notes["audio"].startswith("from the model (LTX2Pipeline)"), notes

    track = read_audio(str(path), AUDIO_RATE)
    assert track is not None
    assert abs(len(track) - 4 * AUDIO_RATE) <= 1024  # one AAC frame at most
    assert len(heard) == 1  # one call made both the video and its soundtrack
    expected = fit_length(to_stereo_48k(*heard[0]), 4 * AUDIO_RATE)
    assert correlation(track, expected) > 0.9

    spec = RenderSpec(
        mode=Mode.TEXT,
        prompt=PROMPT,
        negative_prompt="",
        width=facts.width,
        height=facts.height,
        fps=24,
        num_frames=96,
        seed=SEED,
        audio=True,
    )
    assert abs(correlation(track, procedural(spec))) < 0.2


def test_generate_audio_false_gives_no_audio_track(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(client, text_request(PROMPT, seed=SEED, generateAudio=False), MODEL)
    path = download(client, op, tmp_path / "silent.mp4")
    assert video_facts(path).audio_rate is None
    assert op["metadata"]["notes"]["audio"] == "none"


def test_extension_keeps_the_input_audio_then_the_models(
    client: httpx.Client, heard: list[tuple[np.ndarray, int]], tmp_path: Path
) -> None:
    op = generate(client, text_request(PROMPT, seed=SEED, generateAudio=True), MODEL)
    source = read_audio(str(download(client, op, tmp_path / "src.mp4")), AUDIO_RATE)
    heard.clear()
    body = {
        "instances": [{"prompt": "the rain goes on", "video": {"uri": sample_uris(op)[0]}}],
        "parameters": {"seed": SEED, "generateAudio": True},
    }
    ext = generate(client, body, MODEL)
    path = download(client, ext, tmp_path / "ext.mp4")
    facts = video_facts(path)
    assert (facts.frames, facts.audio_rate, facts.audio_channels) == (11 * 24, 48000, 2)
    notes = ext["metadata"]["notes"]
    assert notes["audio"].startswith("from the model (LTX2ConditionPipeline)"), notes
    assert "input's own audio" in notes["audio"]

    track = read_audio(str(path), AUDIO_RATE)
    assert track is not None and source is not None
    second = AUDIO_RATE
    # The input's four seconds are the input's audio (AAC re-encoded).
    assert correlation(track[: 4 * second - 4096], source[: 4 * second - 4096]) > 0.9
    # Then the condition pipeline's first call: its frame 8 (the last of 9 context frames) is
    # the input's last frame, at 95/24 s; its waveform plays from 8 frames before that.
    assert len(heard) >= 1
    made = to_stereo_48k(*heard[0])
    offset = int(round((95 - 8) / 24 * second))
    start, end = int(4.2 * second), 5 * second
    assert correlation(track[start:end], made[start - offset : end - offset]) > 0.9


def test_image_request_muxes_the_image_pipelines_soundtrack(
    client: httpx.Client, heard: list[tuple[np.ndarray, int]], tmp_path: Path
) -> None:
    heard.clear()
    image = {"inlineData": {"mimeType": "image/png", "data": b64(png_bytes())}}
    body = {
        "instances": [{"prompt": PROMPT, "image": image}],
        "parameters": {"durationSeconds": 4, "seed": SEED, "generateAudio": True},
    }
    op = generate(client, body, MODEL)
    notes = op["metadata"]["notes"]
    assert notes["pipeline"] == "LTX2ImageToVideoPipeline"
    assert notes["audio"].startswith("from the model (LTX2ImageToVideoPipeline)"), notes
    track = read_audio(str(download(client, op, tmp_path / "i2v.mp4")), AUDIO_RATE)
    assert track is not None and len(heard) == 1
    expected = fit_length(to_stereo_48k(*heard[0]), 4 * AUDIO_RATE)
    assert correlation(track, expected) > 0.9
