"""Helpers the API tests share: images, polling, MP4 inspection."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx
import numpy as np
from PIL import Image

from cinegen.core.operation import Operation, State
from cinegen.store.db import Database


def png_bytes(
    width: int = 320,
    height: int = 180,
    color: tuple[int, int, int] = (200, 40, 40),
    square: tuple[int, int] | None = None,
) -> bytes:
    """A PNG with a flat background and, optionally, a white square at (x, y)."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = color
    if square is not None:
        x, y = square
        side = max(height // 4, 4)
        img[y : y + side, x : x + side] = 255
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def create(
    client: httpx.Client,
    body: dict,
    model: str = "veo-3.1-generate-preview",
    version: str = "v1beta",
) -> httpx.Response:
    return client.post(f"/{version}/models/{model}:predictLongRunning", json=body)


def text_request(prompt: str, **parameters: object) -> dict:
    """A Gemini API body for text to video; 4 s unless `durationSeconds` says otherwise."""
    return {"instances": [{"prompt": prompt}], "parameters": {"durationSeconds": 4, **parameters}}


def submit(client: httpx.Client, body: dict, model: str = "veo-3.1-generate-preview") -> str:
    """Create an operation; its name."""
    response = create(client, body, model)
    assert response.status_code == 200, response.text
    return response.json()["name"]


def operation(client: httpx.Client, name: str) -> dict:
    """The operation as a poll answers it now."""
    response = client.get(f"/v1beta/{name}")
    assert response.status_code == 200, response.text
    return response.json()


QUEUED_AT = datetime(2026, 12, 1, tzinfo=UTC)


def insert_queued(
    db: Database, op_id: str, owner: str | None = None, at: datetime = QUEUED_AT
) -> None:
    """A queued operation's row, written straight to the database (claim and lease tests)."""
    db.insert_operation(
        Operation(
            id=op_id,
            model="veo-3.1-generate-preview",
            dialect="gemini",
            owner=owner,
            state=State.QUEUED,
            create_time=at,
            update_time=at,
            request={},
            seed=1,
        )
    )


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> float:
    """Seconds until `check()` held; AssertionError naming `what` after `timeout` seconds."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - start


def wait_done(client: httpx.Client, name: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/v1beta/{name}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body.get("done"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"operation {name} not done after {timeout} s")


def generate(client: httpx.Client, body: dict, model: str = "veo-3.1-generate-preview") -> dict:
    response = create(client, body, model)
    assert response.status_code == 200, response.text
    return wait_done(client, response.json()["name"])


def sample_uris(op: dict) -> list[str]:
    assert "response" in op, op
    return [s["video"]["uri"] for s in op["response"]["generateVideoResponse"]["generatedSamples"]]


@dataclass
class VideoFacts:
    width: int
    height: int
    fps: float
    frames: int
    audio_rate: int | None
    audio_channels: int | None


def video_facts(path: Path) -> VideoFacts:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        facts = VideoFacts(
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=float(video.average_rate),
            frames=0,
            audio_rate=audio.codec_context.sample_rate if audio else None,
            audio_channels=audio.codec_context.channels if audio else None,
        )
        facts.frames = sum(1 for _ in container.decode(video=0))
    return facts


def first_and_last_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return frames[0], frames[-1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
