"""Bilinear warps of colour images, done on four channels.

OpenCV's `remap` and `warpAffine` have vector code for one- and four-channel images and none
for three, so an RGB image warped as RGBA costs much less than the same warp in RGB. An
image that is warped once per frame is widened once (`four_channels`), and each warped frame
is narrowed back to RGB (`three_channels`, a small part of the saving).

Two images warped and blended per frame (first + last frame) go through `warp_blend`: the C
kernel `_warp_blend.c` where it was built, else the same steps in OpenCV. Image to video
uses the kernel too, for one image (parallax.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

try:
    from cinegen.engines.preview import _warp_blend as _kernel
except ImportError:  # not built (no C compiler at install), or a CPU without AVX2
    _kernel = None  # type: ignore[assignment]  # mypy can't type a module-or-None (mypy#1106)

FUSED = _kernel is not None
"""Whether `warp_blend` runs the C kernel here (the README's install notes say when it does)."""
_HELPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cinegen-blend")


def four_channels(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB → RGBA (opaque), the layout to warp."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)


def three_channels(rgba: np.ndarray) -> np.ndarray:
    """uint8 RGBA → RGB (the fourth channel is dropped)."""
    return cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)


def warp_blend(
    first: np.ndarray, last: np.ndarray, planes: np.ndarray, scales: Sequence[float], t: float
) -> np.ndarray:
    """The in-between frame at time t of two images and their flows, as RGB: at each pixel p,
    share · first(p + d0) + (1 − share) · last(p + d1), with share = trust0 / (trust0 + trust1).

    `first` and `last` are RGBA (H × W × 4). `planes` (6 × h × W, float32) holds, at full
    width but a small height h, two flows (x, y each) and where each image's splat landed
    (0 to 1): each output row is interpolated between two of its rows the way `cv2.resize`
    would scale it up. d0 and d1 are the flows times `scales`; each image's trust is where
    it landed times its nearness in time (1 − t for the first, t for the last), plus 1e-4.
    """
    height, width = first.shape[:2]
    if _kernel is None or width < 8 or height < 2:
        return _opencv_warp_blend(first, last, planes, scales, t)
    out = np.empty((height, width, 3), np.uint8)
    rows_taken = np.zeros(1, np.int32)
    frame = (first, last, planes, out, width, height, planes.shape[1], tuple(scales), t, rows_taken)
    helper = _HELPER.submit(_kernel.warp_blend, *frame)  # the kernel lets go of the GIL
    _kernel.warp_blend(*frame)
    helper.result()
    return out


def _opencv_warp_blend(
    first: np.ndarray, last: np.ndarray, planes: np.ndarray, scales: Sequence[float], t: float
) -> np.ndarray:
    """`warp_blend` in OpenCV calls: each plane scaled up, two relative remaps, one blend."""
    height, width = first.shape[:2]
    d0x, d0y, d1x, d1y, landed0, landed1 = (cv2.resize(plane, (width, height)) for plane in planes)
    warped = [
        cv2.remap(  # type: ignore[call-overload]  # OpenCV 4 stubs: map2 may be None
            image,
            np.dstack([dx * np.float32(sx), dy * np.float32(sy)]),
            None,
            cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        for image, dx, dy, sx, sy in (
            (first, d0x, d0y, *scales[:2]),
            (last, d1x, d1y, *scales[2:]),
        )
    ]
    trust0 = landed0 * np.float32(1.0 - t) + np.float32(1e-4)
    trust1 = landed1 * np.float32(t) + np.float32(1e-4)
    share = trust0 / (trust0 + trust1)
    return three_channels(cv2.blendLinear(warped[0], warped[1], share, 1.0 - share))
