"""The size the preview engine works at, below the output size where nothing visible is lost.

Text scenes are smooth, so they are composed at half the output size once that is larger than
`WORK_LONG_SIDE` and scaled up at the end (by the encoder). Footage modes (image to video,
first + last frame) work at the smallest of half and two thirds of the output size that their
images carry no more detail than: a 4k video from a 1080p photo (upscaled by the caller) is
worked at 1920×1080, a 1080p video from a 720p photo at 1280×720, a 4k video from a sharp 4k
photo at full size. Warps cost per pixel: 1280×720 is 44 % of 1080p's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_LONG_SIDE = 960
"""Above this long side, work at half size (at most 1920 on the long side)."""

DETAIL_PSNR = 40.0
"""An image whose trip down to the work size and back up keeps this PSNR (dB) loses nothing
a viewer can see there; the tests ask first and last frames for 35 dB."""


def work_size(width: int, height: int) -> tuple[int, int]:
    """The composing resolution: 720p → 640×360, 1080p → 960×540, 4k → 1920×1080."""
    w, h = width, height
    if max(w, h) > WORK_LONG_SIDE:
        w, h = (w + 1) // 2, (h + 1) // 2
    while max(w, h) > 2 * WORK_LONG_SIDE:
        w, h = (w + 1) // 2, (h + 1) // 2
    return w, h


def footage_size(images: tuple[np.ndarray, ...], width: int, height: int) -> tuple[int, int]:
    """The smallest candidate size (`work_size`, then two thirds of the output where that is
    whole) through which every image keeps `DETAIL_PSNR`, else the output size."""
    candidates = [work_size(width, height)]
    if width % 3 == 0 and height % 3 == 0 and max(width, height) > WORK_LONG_SIDE:
        candidates.append((width * 2 // 3, height * 2 // 3))
    for size in candidates:
        if size != (width, height) and all(_keeps_detail(image, size) for image in images):
            return size
    return width, height


def _keeps_detail(image: np.ndarray, size: tuple[int, int]) -> bool:
    """Whether the image survives a trip down to `size` and back up (bicubic, as the encoder
    scales the luma)."""
    height, width = image.shape[:2]
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    back = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.PSNR(image, back) >= DETAIL_PSNR
