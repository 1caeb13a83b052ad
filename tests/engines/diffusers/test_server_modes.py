"""Every Veo mode end to end through a real server, the Gemini dialect and the diffusers engine
running tiny random-weight pipelines loaded from disk; the output contract checked with PyAV."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import (
    b64,
    create,
    first_and_last_frames,
    generate,
    png_bytes,
    psnr,
    sample_uris,
    video_facts,
    wait_done,
)
from tests.support.diffusers import registry_toml, server_env
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("diffusers")

FAST = "veo-3.1-fast-generate-preview"


@pytest.fixture
def client(gpu_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gpu_server.url, timeout=60) as c:
        yield c


def download(client: httpx.Client, uri: str, path: Path) -> Path:
    response = client.get(uri, follow_redirects=True)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


def frames_of(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def check_contract(path: Path, width: int, height: int, seconds: int, audio: bool = True) -> None:
    facts = video_facts(path)
    assert (facts.width, facts.height) == (width, height)
    assert facts.fps == 24.0
    assert facts.frames == seconds * 24
    if audio:
        assert (facts.audio_rate, facts.audio_channels) == (48000, 2)
    else:
        assert facts.audio_rate is None


def notes(op: dict) -> dict:
    return op["metadata"]["notes"]


def image_part(data: bytes) -> dict:
    return {"inlineData": {"mimeType": "image/png", "data": b64(data)}}


def test_models_list_routes_configured_ids_to_diffusers(client: httpx.Client) -> None:
    models = {m["name"]: m for m in client.get("/v1beta/models").json()["models"]}
    veo31 = models["models/veo-3.1-generate-preview"]["cinegen"]
    assert veo31["engine"] == "diffusers"
    assert models["models/veo-3.0-generate-001"]["cinegen"]["engine"] == "preview"
    native = models["models/tiny-wan"]
    assert native["cinegen"]["engine"] == "diffusers"
    assert native["cinegen"]["extension"] is False and native["cinegen"]["referenceImages"] == 0
    assert "preview engine" not in models["models/veo-3.1-generate-preview"]["description"]


def test_text_to_video_contract_and_audio(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(
        client,
        {
            "instances": [{"prompt": "a drone shot of the sea, sound of wind"}],
            "parameters": {"durationSeconds": 4, "seed": 11},
        },
    )
    check_contract(download(client, sample_uris(op)[0], tmp_path / "t.mp4"), 1280, 720, 4)
    n = notes(op)
    assert n["engine"] == "diffusers" and n["pipeline"] == "WanPipeline"
    assert n["generated_size"] == "64x32"
    assert "optical-flow" in n["frame_rate_conversion"]
    assert "procedural soundtrack" in n["audio"]  # said so: no audio model is configured


def test_portrait_9_16(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(
        client,
        {
            "instances": [{"prompt": "a red city at night"}],
            "parameters": {"durationSeconds": 4, "aspectRatio": "9:16"},
        },
    )
    check_contract(download(client, sample_uris(op)[0], tmp_path / "p.mp4"), 720, 1280, 4)
    assert notes(op)["generated_size"] == "32x64"


def test_first_frame(client: httpx.Client, tmp_path: Path) -> None:
    first = png_bytes(640, 360, (30, 90, 200), square=(100, 100))
    op = generate(
        client,
        {
            "instances": [{"prompt": "the camera pans", "image": image_part(first)}],
            "parameters": {"durationSeconds": 4},
        },
    )
    check_contract(download(client, sample_uris(op)[0], tmp_path / "i.mp4"), 1280, 720, 4)
    assert notes(op)["pipeline"] == "WanImageToVideoPipeline"
    assert notes(op)["mode"] == "image"


def test_first_and_last_frame(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(
        client,
        {
            "instances": [
                {
                    "prompt": "morning to night",
                    "image": image_part(png_bytes(color=(220, 200, 40))),
                    "lastFrame": image_part(png_bytes(color=(20, 20, 90))),
                }
            ],
            "parameters": {"durationSeconds": 8},
        },
    )
    check_contract(download(client, sample_uris(op)[0], tmp_path / "fl.mp4"), 1280, 720, 8)
    assert notes(op)["mode"] == "interpolation"


def test_reference_images(client: httpx.Client, tmp_path: Path) -> None:
    refs = [
        {"image": image_part(png_bytes(color=c)), "referenceType": "asset"}
        for c in ((200, 0, 0), (0, 200, 0))
    ]
    op = generate(
        client,
        {
            "instances": [{"prompt": "a cat and a dog", "referenceImages": refs}],
            "parameters": {"durationSeconds": 8},
        },
    )
    check_contract(download(client, sample_uris(op)[0], tmp_path / "r.mp4"), 1280, 720, 8)
    assert notes(op)["pipeline"] == "WanVACEPipeline"


def test_extension_keeps_the_input_and_appends_seven_seconds(
    client: httpx.Client, tmp_path: Path
) -> None:
    op = generate(
        client,
        {"instances": [{"prompt": "a slow river"}], "parameters": {"durationSeconds": 4}},
    )
    source = download(client, sample_uris(op)[0], tmp_path / "src.mp4")
    ext = generate(
        client, {"instances": [{"prompt": "it flows on", "video": {"uri": sample_uris(op)[0]}}]}
    )
    out = download(client, sample_uris(ext)[0], tmp_path / "ext.mp4")
    check_contract(out, 1280, 720, 4 + 7)
    assert notes(ext)["pipeline"] == "WanVACEPipeline" and notes(ext)["mode"] == "extension"
    before, after = frames_of(source), frames_of(out)
    assert min(psnr(a, b) for a, b in zip(before, after[:96], strict=True)) > 30


def test_fast_model_runs_ltx_in_chunks(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(
        client,
        {
            "instances": [
                {
                    "prompt": "a forest",
                    "image": image_part(png_bytes(color=(10, 120, 10))),
                    "lastFrame": image_part(png_bytes(color=(120, 10, 10))),
                }
            ],
            "parameters": {"durationSeconds": 8},
        },
        model=FAST,
    )
    check_contract(download(client, sample_uris(op)[0], tmp_path / "f.mp4"), 1280, 720, 8)
    n = notes(op)
    assert n["pipeline"] == "LTXConditionPipeline" and n["chunks"] > 1
    assert n["frame_rate_conversion"].startswith("none")


def test_sample_count_two_distinct(client: httpx.Client, tmp_path: Path) -> None:
    op = generate(
        client,
        {
            "instances": [{"prompt": "blue sky"}],
            "parameters": {"durationSeconds": 4, "sampleCount": 2, "seed": 5},
        },
    )
    uris = sample_uris(op)
    assert len(uris) == 2
    a, b = (download(client, u, tmp_path / f"{i}.mp4") for i, u in enumerate(uris))
    check_contract(a, 1280, 720, 4)
    check_contract(b, 1280, 720, 4)
    assert psnr(first_and_last_frames(a)[0], first_and_last_frames(b)[0]) < 40


def test_same_seed_same_video(client: httpx.Client, tmp_path: Path) -> None:
    body = {"instances": [{"prompt": "green light"}], "parameters": {"durationSeconds": 4}}
    runs = []
    for index, seed in enumerate((42, 42, 43)):
        op = generate(client, {**body, "parameters": {**body["parameters"], "seed": seed}})
        runs.append(frames_of(download(client, sample_uris(op)[0], tmp_path / f"{index}.mp4")))
    assert all(np.array_equal(x, y) for x, y in zip(runs[0], runs[1], strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(runs[0], runs[2], strict=True))


def test_unconfigured_mode_fails_clearly(client: httpx.Client) -> None:
    body = {
        "instances": [
            {
                "prompt": "x",
                "image": image_part(png_bytes()),
                "lastFrame": image_part(png_bytes(color=(1, 2, 3))),
            }
        ],
        "parameters": {"durationSeconds": 8},
    }
    op = generate(client, body, model="tiny-wan")
    assert op["error"]["code"] == 3
    assert "no diffusers pipeline configured for interpolation" in op["error"]["message"]


# ---------------------------------------------------------------------- own servers


def _slow_server(root: Path, tiny_dirs: dict[str, Path]) -> ServerProcess:
    registry = root / "slow.toml"
    registry.write_text(registry_toml(tiny_dirs, steps=400))
    return ServerProcess(root / "server", env_extra=server_env(registry))


def test_cancel_mid_run_then_next_job_succeeds(tmp_path: Path, tiny_dirs: dict[str, Path]) -> None:
    server = _slow_server(tmp_path, tiny_dirs).start(timeout=60)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            name = create(
                client, {"instances": [{"prompt": "sea"}], "parameters": {"durationSeconds": 4}}
            ).json()["name"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # wait until denoising has started
                op = client.get(f"/v1beta/{name}").json()
                if op["metadata"]["progressPercent"] > 0:
                    break
                time.sleep(0.1)
            progress = op["metadata"]["progressPercent"]
            assert 0 < progress < 90, op
            started = time.monotonic()
            assert client.post(f"/v1beta/{name}:cancel").status_code == 200
            done = wait_done(client, name, timeout=60)
            assert done["error"]["code"] == 1 and "response" not in done
            assert time.monotonic() - started < 20  # aborted at a step, not after 400
            after = generate(
                client,
                {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 4}},
                model=FAST,
            )
            assert len(sample_uris(after)) == 1
    finally:
        server.stop()


def test_out_of_memory_fails_the_operation_and_keeps_the_worker(
    fresh_server: ServerProcess, registry_file: Path, tmp_path: Path
) -> None:
    fresh_server.env_extra.update(server_env(registry_file))
    fresh_server.start(timeout=60)
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        body = {"instances": [{"prompt": "anything"}], "parameters": {"durationSeconds": 4}}
        failed = generate(client, body, model="tiny-oom")
        assert failed["error"]["code"] == 8  # RESOURCE_EXHAUSTED
        assert "out of memory" in failed["error"]["message"]
        assert "Traceback" not in failed["error"]["message"]
        ok = generate(client, body, model="tiny-wan")
        check_contract(
            download(client, sample_uris(ok)[0], tmp_path / "ok.mp4"), 1280, 720, 4, False
        )


def test_models_lists_what_the_registry_configures(registry_file: Path, tmp_path: Path) -> None:
    """`cinegen models` shows the catalog a server with these settings serves: the Veo ids
    the registry routes to the diffusers engine, its native ids, the rest on the preview."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINEGEN_")}
    env.update(
        {"CINEGEN_DATA_DIR": str(tmp_path), "CINEGEN_DIFFUSERS_REGISTRY": str(registry_file)}
    )
    run = subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "models"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    engines = {line.split()[0]: line.split()[1] for line in run.stdout.splitlines()}
    assert engines["veo-3.1-generate-preview"] == "diffusers"
    assert engines["tiny-wan"] == "diffusers"
    assert engines["veo-2.0-generate-001"] == "preview"
