"""The size the preview engine works at, below the output size where nothing visible is lost.

Text scenes are smooth, so they are composed at half the output size once that is larger than
`WORK_LONG_SIDE` and scaled up at the end. Footage modes (image to video, first + last frame)
work at that size only when their images carry no more detail than it: a 4k video from a
720p photo (upscaled by the caller) is worked at 1080p, a 4k video from a sharp 4k photo at
full size. Warps are memory-bound, so a quarter of the pixels is about a quarter of the time.
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
    """`work_size` when every image keeps `DETAIL_PSNR` through it, else the output size."""
    size = work_size(width, height)
    if size == (width, height):
        return size
    for image in images:
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        back = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        if cv2.PSNR(image, back) < DETAIL_PSNR:
            return width, height
    return size
