"""Masked editing (Vertex `mask`) with Wan VACE, through the diffusers engine and the tiny
random-weight VACE on disk: per mode, the masks VACE is given (the pipeline's call spied on),
the output's length and size, the unmasked pixels exactly the input's and the masked ones
made anew; then one edit through Vertex's REST route, and the refusal of a mask on a model
whose registry has no `edit` pipeline."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from cinegen.core.catalog import Catalog
from cinegen.core.errors import Cancelled
from cinegen.core.request import GenerateRequest, MediaRef, Mode
from cinegen.core.rules import RuleError, check
from cinegen.engines.base import InputVideo, RenderSpec
from cinegen.engines.diffusers import register_models
from cinegen.engines.diffusers.config import RegistryError, parse_registry
from cinegen.engines.diffusers.engine import DiffusersEngine
from cinegen.engines.diffusers.loading import LoadOptions
from cinegen.media.decode import iter_video_frames, probe_video
from cinegen.media.encode import encode_clip
from tests.media.video_checks import clip_of, psnr, textured

pytestmark = pytest.mark.xdist_group("diffusers")

MODEL = "veo-2.0-generate-exp"
W, H = 96, 64
FRAMES = 24
SIDE = 16
RECT = (24, 16, 40, 28)  # INSERT / OUTPAINT: x, y, w, h


def registry_text(vace: Path) -> str:
    """One VACE pipeline at 24 fps (model frame j is output frame j), at most 17 frames at
    once: a 24-frame edit takes two windows."""
    return f"""
[pipelines.vace]
class = "WanVACEPipeline"
path = "{vace}"
fps = 24
max_area = 2048
max_frames = 17
context_frames = 4
steps = 2
guidance_scale = 1.0

[models."{MODEL}"]
edit = "vace"
"""


def square_at(index: int) -> tuple[int, int]:
    return 8 + 2 * index, 24


def make_input(path: Path, width: int = W, height: int = H, side: int = SIDE) -> Path:
    """A still picture with a red square crossing it."""
    background = textured(width, height, seed=5)
    frames = []
    scale = width // W
    for index in range(FRAMES):
        frame = background.copy()
        x, y = (v * scale for v in square_at(index))
        frame[y : y + side, x : x + side] = (230, 30, 40)
        frames.append(frame)
    encode_clip(clip_of(frames), str(path))
    return path


@pytest.fixture(scope="module")
def input_video(tmp_path_factory: pytest.TempPathFactory) -> InputVideo:
    path = make_input(tmp_path_factory.mktemp("edit") / "input.mp4")
    info = probe_video(str(path))
    return InputVideo(str(path), info.width, info.height, info.num_frames, info.fps, False)


@pytest.fixture(scope="module")
def given(input_video: InputVideo) -> list[np.ndarray]:
    return list(iter_video_frames(input_video.path))


@pytest.fixture(scope="module")
def engine(tiny_dirs: dict[str, Path]) -> DiffusersEngine:
    registry = parse_registry(_toml(registry_text(tiny_dirs["wan-vace"])), "edit.toml")
    return DiffusersEngine(registry, LoadOptions(max_loaded=1))


def _toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every WanVACEPipeline call (its __call__ wrapped)."""
    from diffusers import WanVACEPipeline

    seen: list[dict[str, Any]] = []
    original = WanVACEPipeline.__call__

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(WanVACEPipeline, "__call__", spy)
    return seen


def mask_of(mode: str) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    if mode in ("INSERT", "OUTPAINT"):
        x, y, w, h = RECT
        mask[y : y + h, x : x + w] = True
    else:
        x, y = square_at(0)
        mask[y - 2 : y + SIDE + 2, x - 2 : x + SIDE + 2] = True
    return mask


def edit_spec(input_video: InputVideo, mode: str) -> RenderSpec:
    return RenderSpec(
        mode=Mode.EDIT,
        prompt="a red cat",
        negative_prompt="",
        width=W,
        height=H,
        fps=24,
        num_frames=FRAMES,
        seed=3,
        audio=False,
        input_video=input_video,
        mask=mask_of(mode),
        mask_mode=mode,
        model=MODEL,
    )


def render(engine: DiffusersEngine, spec: RenderSpec) -> tuple[list[np.ndarray], dict]:
    fractions: list[float] = []
    clip = engine.render(spec, fractions.append)
    frames = list(clip.frames)
    assert clip.fps == 24 and (clip.width, clip.height) == (W, H)
    assert len(frames) == clip.num_frames == FRAMES  # as long as the input
    assert all(f.shape == (H, W, 3) for f in frames)
    assert any(0.0 < f < 0.9 for f in fractions)  # the pipeline's steps reported
    assert "Wan VACE" in str(clip.notes["edit"])
    return frames, clip.notes


def masks(call: dict[str, Any]) -> list[np.ndarray]:
    """The call's masks as bool arrays (True = white = generate)."""
    return [np.asarray(m) > 127 for m in call["mask"]]


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def check_windows(calls: list[dict[str, Any]]) -> None:
    """24 frames in windows of at most 17 (4k+1), the second starting on 4 frames kept."""
    assert [c["num_frames"] for c in calls] == [17, 13]
    for call in calls:
        assert len(call["video"]) == len(call["mask"]) == call["num_frames"]
        assert (call["height"], call["width"]) == (32, 48)
    assert not any(m.any() for m in masks(calls[1])[:4])


# --------------------------------------------------------------------------- per mode


def test_remove_follows_the_moving_object_and_keeps_the_rest(
    engine: DiffusersEngine,
    input_video: InputVideo,
    given: list[np.ndarray],
    calls: list[dict[str, Any]],
) -> None:
    frames, notes = render(engine, edit_spec(input_video, "REMOVE"))
    check_windows(calls)
    assert "tracked" in str(notes["edit"])
    first = masks(calls[0])
    for j in (0, 8, 16):  # the square's centre, at the generation size (half)
        x, y = square_at(j)
        cx, cy = (x + SIDE // 2) // 2, (y + SIDE // 2) // 2
        assert first[j][cy, cx], j
        assert not first[j][cy, cx - 14], j  # well behind it: kept
    x0, y0 = square_at(0)
    assert first[0][(y0 + 8) // 2, (x0 + 8) // 2] and not first[16][(y0 + 8) // 2, (x0 + 8) // 2]
    grey = np.asarray(calls[0]["video"][8])
    x, y = square_at(8)
    assert (grey[(y + 8) // 2, (x + 8) // 2] == 127).all()  # the object is not shown to VACE
    for index in (0, 12, 23):
        x, y = square_at(index)
        far = np.ones((H, W), bool)
        far[max(0, y - 12) : y + SIDE + 12, max(0, x - 12) : x + SIDE + 12] = False
        assert psnr(frames[index][far], given[index][far]) >= 40
        inside = (slice(y + 4, y + SIDE - 4), slice(x + 4, x + SIDE - 4))
        assert diff(frames[index][inside], given[index][inside]) > 20  # the red is gone


def test_remove_static_regenerates_the_same_region_on_every_frame(
    engine: DiffusersEngine,
    input_video: InputVideo,
    given: list[np.ndarray],
    calls: list[dict[str, Any]],
) -> None:
    frames, _ = render(engine, edit_spec(input_video, "REMOVE_STATIC"))
    check_windows(calls)
    first = masks(calls[0])
    assert all(np.array_equal(m, first[0]) for m in first)
    expected = cv2.resize(mask_of("REMOVE_STATIC").astype(np.uint8), (48, 32)) > 0
    assert (first[0] >= expected).all()  # the region, grown a little for its soft edge
    assert first[0].mean() < 0.35
    region = mask_of("REMOVE_STATIC")
    grown = cv2.dilate(region.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
    for index in (0, 12, 23):
        assert psnr(frames[index][~grown], given[index][~grown]) >= 40
        assert diff(frames[index][region], given[index][region]) > 8


def test_insert_generates_inside_the_rectangle_only(
    engine: DiffusersEngine,
    input_video: InputVideo,
    given: list[np.ndarray],
    calls: list[dict[str, Any]],
) -> None:
    frames, _ = render(engine, edit_spec(input_video, "INSERT"))
    check_windows(calls)
    x, y, w, h = (v // 2 for v in RECT)
    for m in masks(calls[0]):
        assert m[y : y + h, x : x + w].all()
        outside = np.ones_like(m)
        outside[y : y + h, x : x + w] = False
        assert not m[outside].any()
    rect = mask_of("INSERT")
    for index in (0, 12, 23):
        assert psnr(frames[index][~rect], given[index][~rect]) >= 40
        assert diff(frames[index][rect], given[index][rect]) > 8


def test_outpaint_keeps_the_scaled_input_in_the_rectangle(
    engine: DiffusersEngine,
    input_video: InputVideo,
    given: list[np.ndarray],
    calls: list[dict[str, Any]],
) -> None:
    frames, _ = render(engine, edit_spec(input_video, "OUTPAINT"))
    check_windows(calls)
    x, y, w, h = (v // 2 for v in RECT)
    for m in masks(calls[0]):
        assert not m[y + 1 : y + h - 1, x + 1 : x + w - 1].any()
        assert m[:, :x].all() and m[:, x + w + 1 :].all()
    rx, ry, rw, rh = RECT
    for index in (0, 12, 23):
        inner = cv2.resize(given[index], (rw, rh), interpolation=cv2.INTER_AREA)
        assert psnr(frames[index][ry : ry + rh, rx : rx + rw], inner) >= 40
        outside = ~mask_of("OUTPAINT")
        assert diff(frames[index][outside], given[index][outside]) > 8


def test_an_edit_is_cancelled_at_a_step(
    engine: DiffusersEngine, input_video: InputVideo, calls: list[dict[str, Any]]
) -> None:
    def progress(fraction: float) -> None:
        raise Cancelled()

    with pytest.raises(Cancelled):
        list(engine.render(edit_spec(input_video, "INSERT"), progress).frames)
    assert len(calls) == 1  # aborted in the first window's first step


# --------------------------------------------------------------------------- registry


def test_only_vace_can_edit() -> None:
    wan = {"class": "WanPipeline", "path": "/x"}
    with pytest.raises(RegistryError, match="cannot serve `edit`"):
        parse_registry({"pipelines": {"p": wan}, "models": {MODEL: {"text": "p", "edit": "p"}}})


def masked(model: str) -> GenerateRequest:
    return GenerateRequest(
        model=model,
        video=MediaRef(file_id="abc"),
        mask=MediaRef(data=b"png"),
        mask_mode="remove",
        dialect="vertex",
    )


def test_a_row_takes_a_mask_only_where_its_registry_edits() -> None:
    """Rows routed to the diffusers engine: a mask is refused at submit unless the model's
    registry entry has an `edit` pipeline (a native row too)."""
    vace = {"class": "WanVACEPipeline", "path": "/x"}
    catalog = Catalog()
    assert check(masked(MODEL), catalog=catalog).mask_mode == "REMOVE"  # the preview engine
    registry = parse_registry(
        {
            "pipelines": {"v": vace},
            "models": {
                MODEL: {"text": "v"},
                "veo-2.0-generate-preview": {"edit": "v"},
                "open-edit": {"edit": "v"},
                "open-text": {"text": "v"},
            },
        }
    )
    register_models(registry, catalog)
    for refused in (MODEL, "open-text"):
        with pytest.raises(RuleError, match="^`mask` isn't supported by this model"):
            check(masked(refused), catalog=catalog)
    for editing in ("veo-2.0-generate-preview", "open-edit"):
        assert check(masked(editing), catalog=catalog).mask_mode == "REMOVE"
    with pytest.raises(RuleError, match="^`mask` isn't supported by this model"):
        check(replace(masked("open-edit"), dialect="gemini"), catalog=catalog)


# --------------------------------------------------------------------------- REST


RW, RH = 1280, 720


def _frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _body(video: bytes, mask: np.ndarray, mode: str) -> dict:
    from tests.helpers import b64

    png = cv2.imencode(".png", mask.astype(np.uint8) * 255)[1].tobytes()
    return {
        "instances": [
            {
                "prompt": "a red cat",
                "video": {"bytesBase64Encoded": b64(video), "mimeType": "video/mp4"},
                "mask": {"bytesBase64Encoded": b64(png), "mimeType": "image/png", "maskMode": mode},
            }
        ]
    }


@pytest.fixture
def server(tmp_path: Path, tiny_dirs: dict[str, Path]) -> Iterator[Any]:
    from tests.support.app import in_process

    registry = tmp_path / "registry.toml"
    registry.write_text(registry_text(tiny_dirs["wan-vace"]))
    with in_process(tmp_path / "data", workers=0, diffusers_registry=registry) as server:
        yield server


def test_vertex_insert_through_rest_with_the_diffusers_engine(server: Any, tmp_path: Path) -> None:
    from tests.api.vertex.support import inline_videos, vcreate, vfetch
    from tests.support.app import op_id

    data = make_input(tmp_path / "input.mp4", RW, RH, side=SIDE * 10).read_bytes()
    server.db.record_made_video(hashlib.sha256(data).hexdigest(), "0" * 16)
    mask = np.zeros((RH, RW), bool)
    mask[200:500, 300:900] = True
    with server.client() as client:
        created = vcreate(client, _body(data, mask, "INSERT"), MODEL)
        assert created.status_code == 200, created.text
        name = created.json()["name"]
        server.run(op_id(name))
        done = vfetch(client, name).json()
    assert done.get("done") and "error" not in done, done
    notes = done["metadata"]["notes"]
    assert notes["engine"] == "diffusers" and "Wan VACE" in notes["edit"]
    out, given = _frames(inline_videos(done)[0]), _frames(data)
    assert len(out) == len(given) == FRAMES and out[0].shape == (RH, RW, 3)
    for a, b in zip(out, given, strict=True):
        assert psnr(a[~mask], b[~mask]) >= 35  # through a second H.264 encode
        assert diff(a[mask], b[mask]) > 8
