"""What makes a moving part of the small frames a subject, and finding a part of one small
frame in another.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np

SUBJECT_STRIDE = 6
"""Frames between the two the subjects' motion is measured on: slow subjects need a span."""
MIN_SUBJECT_SHIFT = 1.5
"""Small-copy pixels over SUBJECT_STRIDE frames that a subject moves more than the camera."""
MAX_SUBJECT_SPAN = 0.6
"""A moving part wider or taller than this share of the frame is a depth layer, not a subject."""
MAX_SUBJECTS = 8
"""The largest moving parts looked at (rain and snow make many small ones)."""
MIN_SUBJECT_AREA = 12
"""Small-copy pixels: a smaller moving part is flow noise."""
SUBJECT_MATCH = 24
"""Levels (largest of R, G, B) within which a small-copy pixel is taken to match."""
DISC3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """`cv2.boundingRect` of a uint8 mask: (x, y, width, height)."""
    # cv2's stubs type the Rect it returns as Sequence[int]; it is a tuple of four ints.
    return cast("tuple[int, int, int, int]", cv2.boundingRect(mask))


def largest_channel(rgb: np.ndarray) -> np.ndarray:
    """The largest of R, G and B at each pixel (OpenCV: a NumPy max over the last axis of an
    H × W × 3 array is several times slower)."""
    red, green, blue = cv2.split(rgb)
    return cv2.max(cv2.max(red, green), blue)


def largest_pieces(moving: np.ndarray) -> list[np.ndarray]:
    """The MAX_SUBJECTS largest connected parts of `moving` of at least MIN_SUBJECT_AREA
    pixels, largest first."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        moving.astype(np.uint8), connectivity=8
    )
    largest = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:MAX_SUBJECTS] + 1
    return [
        labels == label for label in largest if stats[label, cv2.CC_STAT_AREA] >= MIN_SUBJECT_AREA
    ]


def filled(mask: np.ndarray) -> np.ndarray:
    """`mask` with every region it encloses filled in."""
    h, w = mask.shape
    outside = np.zeros((h + 2, w + 2), np.uint8)
    outside[1:-1, 1:-1] = mask
    cv2.floodFill(outside, None, (0, 0), 2)
    return outside[1:-1, 1:-1] != 2


def matched_shift(
    last: np.ndarray,
    before: np.ndarray,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    reach: float,
    guess: tuple[float, float] = (0.0, 0.0),
) -> tuple[float, float] | None:
    """Where the masked pixels of `last` in `box` were in `before`, as a shift (to a tenth of
    a pixel: a parabola through the best match and its neighbours), searched within `reach`
    of `guess`; None where the best match is at the edge of the search. Beyond the frame's
    edge `before` repeats its edge pixels: a car that has just driven in whole was partly
    outside it then."""
    x, y, width, height = box
    r = int(np.ceil(reach))
    gx, gy = round(guess[0]), round(guess[1])
    left, top = x + gx - r, y + gy - r
    pad = r + max(abs(gx), abs(gy))
    padded = cv2.copyMakeBorder(before, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    searched = padded[
        top + pad : top + pad + height + 2 * r, left + pad : left + pad + width + 2 * r
    ]
    template = last[y : y + height, x : x + width]
    weights = mask[y : y + height, x : x + width].astype(np.uint8)
    cost = cv2.matchTemplate(searched, template, cv2.TM_SQDIFF, mask=weights)
    _, _, (bx, by), _ = cv2.minMaxLoc(cost)
    if not (0 < bx < cost.shape[1] - 1 and 0 < by < cost.shape[0] - 1):
        return None  # the best match is where the search stopped: nothing was matched

    def refined(c_minus: float, c_mid: float, c_plus: float) -> float:
        curve = c_minus - 2 * c_mid + c_plus
        return 0.0 if curve <= 0 else float(np.clip(0.5 * (c_minus - c_plus) / curve, -0.5, 0.5))

    fx = refined(*cost[by, bx - 1 : bx + 2])
    fy = refined(*cost[by - 1 : by + 2, bx])
    return left + bx + fx - x, top + by + fy - y
