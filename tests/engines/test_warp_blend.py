"""The fused first + last frame render (`_warp_blend.c`) against the same steps in OpenCV.

The kernel is what a user of an x86-64 machine with AVX2 runs; OpenCV is the fallback and
the reference: the two must give the same frame to within rounding.
"""

from __future__ import annotations

import platform
from pathlib import Path

import cv2
import numpy as np
import pytest

from cinegen.engines.preview import parallax, warp
from cinegen.engines.preview.parallax import ParallaxShot
from cinegen.engines.preview.warp import four_channels, warp_blend
from cinegen.engines.prompt import parse_prompt
from tests.media.video_checks import textured


def _has_avx2() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() not in ("x86_64", "AMD64") or not cpuinfo.exists():
        return False
    flags = cpuinfo.read_text().split()
    return "avx2" in flags and "fma" in flags


def test_the_kernel_is_built_and_used_where_the_cpu_has_avx2() -> None:
    assert _has_avx2() == warp.FUSED


def _planes(width: int, small_height: int, reach: float, seed: int) -> np.ndarray:
    """Smooth random flows (up to `reach` pixels, so some samples fall off the frame) and
    landing maps with holes, at full width and a small height."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(-1.0, 1.0, (6, small_height, max(2, width // 5))).astype(np.float32)
    small[:4] *= reach
    small[4:] = (small[4:] > -0.5).astype(np.float32)  # a quarter of each splat missing
    small[4:] = [cv2.GaussianBlur(plane, (3, 3), 0) for plane in small[4:]]
    wide = cv2.resize(small.reshape(-1, small.shape[2]), (width, 6 * small_height))
    return wide.reshape(6, small_height, width)


@pytest.mark.parametrize(
    ("width", "height", "small_height"),
    [(256, 144, 29), (203, 117, 23), (8, 2, 1), (1280, 720, 144)],
)
@pytest.mark.parametrize("t", [0.0, 0.3, 0.75, 1.0])
def test_the_kernel_renders_what_opencv_renders(
    width: int, height: int, small_height: int, t: float
) -> None:
    """Odd widths (the last band of 8 pixels overlaps), tiny frames, flows that leave the
    frame (edges repeated), holes in either splat, both ends of time."""
    first = four_channels(textured(width, height, seed=1))
    last = four_channels(textured(width, height, seed=2))
    planes = _planes(width, small_height, reach=0.3 * width, seed=width + height)
    scales = (-t * 1.7, -t * 0.9, -(1.0 - t) * 1.3, -(1.0 - t) * 1.1)
    fused = warp_blend(first, last, planes, scales, t)
    reference = warp._opencv_warp_blend(first, last, planes, scales, t)
    assert fused.shape == reference.shape == (height, width, 3)
    error = np.abs(fused.astype(np.int16) - reference.astype(np.int16))
    # OpenCV rounds positions to 1/32 pixel, the kernel to 1/64: a level or two apart.
    assert error.max() <= 3, error.max()
    assert error.mean() < 0.5, error.mean()


@pytest.mark.parametrize("t", [0.2, 0.5, 0.9])
def test_a_still_background_renders_what_opencv_renders(t: float) -> None:
    """Where neither image moves by a 128th of a pixel (a still background, DIS's noise on
    it), the kernel loads the pixels instead of sampling them: the frame is the same, on the
    background, on a moving patch in it and along the patch's border."""
    width, height, small_height = 320, 180, 36
    first = four_channels(textured(width, height, seed=3))
    last = four_channels(textured(width, height, seed=4))
    rng = np.random.default_rng(5)
    planes = np.empty((6, small_height, width), np.float32)
    planes[:4] = rng.uniform(-1e-3, 1e-3, (4, small_height, width))  # under 1/128 px, scaled
    planes[:4, 10:20, 101:163] = rng.uniform(-6.0, 6.0, (4, 10, 62))  # a moving patch
    planes[4:] = 1.0
    planes[4:, 14:16, 120:140] = 0.0  # a hole in both splats
    scales = (-t * 2.0, -t * 2.0, -(1.0 - t) * 2.0, -(1.0 - t) * 2.0)
    fused = warp_blend(first, last, planes, scales, t)
    reference = warp._opencv_warp_blend(first, last, planes, scales, t)
    error = np.abs(fused.astype(np.int16) - reference.astype(np.int16))
    assert error.max() <= 3, error.max()
    assert error.mean() < 0.5, error.mean()
    background = np.ones((height, width), bool)
    background[40:110, 95:170] = False  # the patch, widened by the vertical interpolation
    assert error[background].max() <= 1


@pytest.mark.skipif(not warp.FUSED, reason="the kernel is not built on this machine")
def test_the_kernel_refuses_buffers_of_the_wrong_size() -> None:
    first = four_channels(textured(64, 32, seed=1))
    planes = _planes(64, 8, reach=4.0, seed=0)
    out = np.empty((32, 64, 3), np.uint8)
    rows_taken = np.zeros(1, np.int32)
    kernel = warp._kernel
    with pytest.raises(ValueError, match="planes"):
        kernel.warp_blend(first, first, planes[:5], out, 64, 32, 8, (1, 1, 1, 1), 0.5, rows_taken)
    with pytest.raises(ValueError, match="out"):
        kernel.warp_blend(first, first, planes, out[:16], 64, 32, 8, (1, 1, 1, 1), 0.5, rows_taken)
    with pytest.raises(ValueError, match="first and last"):
        kernel.warp_blend(first, first[:16], planes, out, 64, 32, 8, (1, 1, 1, 1), 0.5, rows_taken)


@pytest.mark.skipif(not warp.FUSED, reason="the kernel is not built on this machine")
@pytest.mark.parametrize("t", [0.001, 0.4, 0.999])
def test_the_avx2_and_avx512_builds_render_the_same_frame(t: float) -> None:
    """A CPU with AVX-512 runs the kernel's second build; the AVX2 one runs everywhere else.
    Both are run here (on a CPU without AVX-512, both calls run the AVX2 build)."""
    width, height, small_height = 333, 190, 38
    first = four_channels(textured(width, height, seed=6))
    last = four_channels(textured(width, height, seed=7))
    planes = _planes(width, small_height, reach=40.0, seed=8)
    scales = (-t * 1.5, -t * 1.2, -(1.0 - t) * 1.5, -(1.0 - t) * 1.2)
    frames = []
    for avx512 in (True, False):
        out = np.empty((height, width, 3), np.uint8)
        arguments = (first, last, planes, out, width, height, small_height, scales, t)
        warp._kernel.warp_blend(*arguments, np.zeros(1, np.int32), avx512)
        frames.append(out)
    assert np.array_equal(*frames)
    reference = warp._opencv_warp_blend(first, last, planes, scales, t)
    assert np.abs(frames[1].astype(np.int16) - reference.astype(np.int16)).max() <= 3


@pytest.mark.skipif(not warp.FUSED, reason="the kernel is not built on this machine")
@pytest.mark.parametrize("prompt", ["pan right", "slow push in, tilt up", "drone shot"])
def test_image_to_video_frames_from_the_kernel_match_opencv_remap(monkeypatch, prompt) -> None:
    """Image to video warps its one image with the kernel (the second weighted zero) where
    every lookup stays inside the image; OpenCV's remap is the reference."""
    image = textured(301, 170, seed=9)
    shot = ParallaxShot(image, parse_prompt(prompt), fps=24, num_frames=48)
    assert shot.fit
    fused = [shot.frame(index) for index in (1, 20, 47)]
    monkeypatch.setattr(parallax, "FUSED", False)
    shot = ParallaxShot(image, parse_prompt(prompt), fps=24, num_frames=48)
    for index, frame in zip((1, 20, 47), fused, strict=True):
        error = np.abs(frame.astype(np.int16) - shot.frame(index).astype(np.int16))
        assert error.max() <= 3, (index, error.max())
        assert error.mean() < 0.5, (index, error.mean())
