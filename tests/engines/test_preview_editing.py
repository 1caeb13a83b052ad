"""Masked editing in the preview engine (issue 30), measured on the frames it makes.

The inputs are synthetic videos encoded the way the server stores them: a moving square over a
still picture (REMOVE), a logo fixed on it (REMOVE_STATIC), a plain picture (INSERT, OUTPAINT).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from cinegen.core.request import Mode
from cinegen.engines.base import InputVideo
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.media.decode import iter_video_frames, probe_video
from cinegen.media.encode import encode_clip
from tests.engines.motion_checks import mean_abs_diff
from tests.media.video_checks import clip_of, psnr, textured
from tests.support.preview import spec_for

ENGINE = PreviewEngine()
W, H = 192, 112
FRAMES = 36
SQUARE = 20


def _background() -> np.ndarray:
    return textured(W, H, seed=4)


def _square_at(index: int) -> tuple[int, int]:
    """Where the moving square's top-left corner is on frame `index`: left to right."""
    return 10 + 4 * index, 46


def _moving_square() -> list[np.ndarray]:
    frames = []
    for index in range(FRAMES):
        frame = _background().copy()
        x, y = _square_at(index)
        frame[y : y + SQUARE, x : x + SQUARE] = (230, 30, 40)
        frames.append(frame)
    return frames


def _input(tmp_path, frames: list[np.ndarray]) -> tuple[InputVideo, list[np.ndarray]]:
    """`frames` encoded as an input video: the video, and its frames as decoded."""
    path = str(tmp_path / "input.mp4")
    encode_clip(clip_of(frames), path)
    info = probe_video(path)
    video = InputVideo(path, info.width, info.height, info.num_frames, 24, False)
    return video, list(iter_video_frames(path))


def _edit(video: InputVideo, mask: np.ndarray, mode: str, prompt: str = "") -> list[np.ndarray]:
    spec = spec_for(
        Mode.EDIT,
        prompt=prompt,
        input_video=video,
        mask=mask,
        mask_mode=mode,
        width=W,
        height=H,
        num_frames=video.num_frames,
    )
    return list(ENGINE.render(spec, lambda _: None).frames)


def _box_mask(x: int, y: int, w: int, h: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y : y + h, x : x + w] = True
    return mask


def test_remove_tracks_the_masked_object_and_puts_the_background_back(tmp_path) -> None:
    video, given = _input(tmp_path, _moving_square())
    x0, y0 = _square_at(0)
    out = _edit(video, _box_mask(x0 - 2, y0 - 2, SQUARE + 4, SQUARE + 4), "REMOVE")
    assert len(out) == len(given) == FRAMES
    background = _background()
    for index, frame in enumerate(out):
        x, y = _square_at(index)
        where = (slice(y, y + SQUARE), slice(x, x + SQUARE))
        before = mean_abs_diff(given[index][where], background[where])
        after = mean_abs_diff(frame[where], background[where])
        assert before > 60, (index, before)  # the square was there
        assert after < 8, (index, after)  # and is gone: its pixels are the background's


def test_remove_of_a_still_object_inpaints_it(tmp_path) -> None:
    frame = _background().copy()
    frame[40:60, 80:100] = (20, 20, 230)  # never moves: it is in the median too
    video, given = _input(tmp_path, [frame] * 24)
    out = _edit(video, _box_mask(78, 38, 24, 24), "REMOVE")
    where = (slice(40, 60), slice(80, 100))
    before = mean_abs_diff(given[0][where], _background()[where])
    after = mean_abs_diff(out[-1][where], _background()[where])
    assert before > 60, before
    assert after < before / 2, after  # the texture is guessed, the blue square is gone
    assert out[-1][where][..., 2].mean() < given[0][where][..., 2].mean() - 40


def _with_logo(frames: list[np.ndarray]) -> list[np.ndarray]:
    logo = []
    for frame in frames:
        marked = frame.copy()
        cv2.putText(marked, "TV", (150, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        logo.append(marked)
    return logo


def test_remove_static_fills_the_fixed_region_from_around_it(tmp_path) -> None:
    rows = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
    sky = np.float32([90, 140, 220]) - 60 * rows + np.float32([30, 10, -20]) * cols
    smooth = np.clip(sky, 0, 255).astype(np.uint8)  # a logo over a sky
    video, given = _input(tmp_path, _with_logo([smooth] * 24))
    mask = _box_mask(146, 6, 34, 24)
    out = _edit(video, mask, "REMOVE_STATIC")
    logo = mask & (np.abs(given[0].astype(int) - smooth).max(axis=2) > 40)
    assert logo.sum() > 50
    for index in (0, 12, 23):
        before = mean_abs_diff(given[index][logo], smooth[logo])
        after = mean_abs_diff(out[index][logo], smooth[logo])
        assert before > 60, before
        assert after < 6, after  # close to what surrounds it: the logo is gone
        assert psnr(out[index][~mask], given[index][~mask]) >= 40  # the rest is kept


def test_outpaint_keeps_the_input_in_the_rectangle_and_makes_the_rest(tmp_path) -> None:
    video, given = _input(tmp_path, _moving_square())
    x, y, w, h = 48, 28, 96, 56
    out = _edit(video, _box_mask(x, y, w, h), "OUTPAINT", prompt="a city street at noon")
    assert len(out) == FRAMES and out[0].shape == (H, W, 3)
    for index in (0, 17, 35):
        expected = cv2.resize(given[index], (w, h), interpolation=cv2.INTER_AREA)
        assert psnr(out[index][y : y + h, x : x + w], expected) >= 40
        rest = out[index].copy()
        rest[y : y + h, x : x + w] = 0
        outside = ~_box_mask(x, y, w, h)
        assert rest[outside].mean() > 30  # not black
        assert rest[outside].std() > 10  # not empty: made of the input's edges and the scene


@pytest.mark.parametrize(("prompt", "kind"), [("a red car drives by", "cars"), ("a ball", "ball")])
def test_insert_changes_the_masked_region_only(tmp_path, prompt: str, kind: str) -> None:
    still = _background()
    video, given = _input(tmp_path, [still] * 24)
    mask = _box_mask(40, 30, 100, 50)
    spec = spec_for(
        Mode.EDIT,
        prompt=prompt,
        input_video=video,
        mask=mask,
        mask_mode="INSERT",
        width=W,
        height=H,
        num_frames=video.num_frames,
    )
    clip = ENGINE.render(spec, lambda _: None)
    out = list(clip.frames)
    assert clip.notes["inserted"] == kind
    for index in (0, 12, 23):
        changed = np.abs(out[index].astype(int) - given[index].astype(int)).max(axis=2) > 30
        assert changed[mask].mean() > 0.05, changed[mask].mean()  # the object is in
        assert psnr(out[index][~mask], given[index][~mask]) >= 40  # the rest is unchanged
    first, last = (np.argwhere(np.abs(f.astype(int) - still).max(axis=2) > 30) for f in out[::23])
    assert abs(first[:, 1].mean() - last[:, 1].mean()) > 10  # and it moves


def test_an_edit_is_as_long_as_its_input_and_each_seed_is_repeatable(tmp_path) -> None:
    video, _ = _input(tmp_path, _moving_square())
    mask = _box_mask(40, 30, 100, 50)
    one = _edit(video, mask, "INSERT", prompt="a boat")
    again = _edit(video, mask, "INSERT", prompt="a boat")
    assert len(one) == FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(one, again, strict=True))


def test_a_mask_with_no_region_is_an_engine_error(tmp_path) -> None:
    from cinegen.core.errors import EngineError

    video, _ = _input(tmp_path, _moving_square())
    spec = replace(
        spec_for(Mode.EDIT, input_video=video, width=W, height=H, num_frames=FRAMES),
        mask=np.zeros((H, W), bool),
        mask_mode="REMOVE",
    )
    with pytest.raises(EngineError, match="no region"):
        list(ENGINE.render(spec, lambda _: None).frames)


def test_remove_stops_when_the_object_leaves_and_keeps_the_others(tmp_path) -> None:
    """The tracked (small) square drives out on the right; a green one that comes in later,
    in the corner where an empty track would look, is not the masked object and stays."""
    small, frames = 12, []
    for index in range(FRAMES):
        frame = _background().copy()
        x = 150 + 8 * index
        frame[46 : 46 + small, x : x + small] = (230, 30, 40)  # clipped by the edge
        if index >= 20:
            frame[0:30, 0:30] = (30, 220, 60)
        frames.append(frame)
    video, given = _input(tmp_path, frames)
    out = _edit(video, _box_mask(149, 45, small + 2, small + 2), "REMOVE")
    background = _background()
    for index in range(3):
        x = 150 + 8 * index
        where = (slice(46, 46 + small), slice(x, min(W, x + small)))
        assert mean_abs_diff(out[index][where], background[where]) < 8, index
    green = (slice(0, 30), slice(0, 30))
    for index in range(20, FRAMES):
        assert mean_abs_diff(out[index][green], given[index][green]) < 2, index
