"""Parts at the frame's edge: those moving out through it or in through it, and those it
holds (a car half in, a cloud the frame cuts).
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from cinegen.engines.preview.extension.parts import (
    DISC3,
    MAX_SUBJECT_SPAN,
    MIN_SUBJECT_AREA,
    MIN_SUBJECT_SHIFT,
    SUBJECT_MATCH,
    SUBJECT_STRIDE,
    bounding_box,
    filled,
    largest_channel,
    largest_pieces,
    matched_shift,
)

EDGE_SPAN = 3
"""Frames back that a subject crossing the frame's edge is matched against: it must still
show enough of itself (a car entering shows more of itself each frame)."""
EDGE_MAX_SPEED = 5.0
"""Small-copy pixels per frame: the fastest subject crossing the edge that is looked for."""
EDGE_CROSSING = 0.5
"""The share of its speed a part must move through the edge at to be crossing it."""


def crossing_edges(
    last: np.ndarray, near: np.ndarray, background: np.ndarray, free: np.ndarray, seen: np.ndarray
) -> Iterator[tuple[np.ndarray, tuple[float, float]]]:
    """The parts of `free` (pixels standing out that no subject took) at the frame's edge
    that move out through it or in through it, each with its step per frame (small-copy
    pixels, pointing back to where it was), measured against `near`, EDGE_SPAN frames back.
    Parts mostly outside what the earlier frames have `seen` are left out: where a pan
    brings in new ground, everything stands out from the median.

    The flow misses these: a subject driving in was not there to match a few frames back,
    and one driving out may be a sliver. Leaving, all of what is left was in `near`;
    entering, all of what `near` showed is still in the last frame. So each is matched in
    the one direction that can work, and kept only if that says it crosses the edge.
    """
    h, w = free.shape
    reach = EDGE_MAX_SPEED * EDGE_SPAN
    for mask in largest_pieces(free):
        box = bounding_box(mask.astype(np.uint8))
        if not _outward_speeds(box, (0.0, 0.0), w, h):  # it touches no edge
            continue
        if np.count_nonzero(mask & seen) < 0.5 * np.count_nonzero(mask):
            continue
        step = _leaving_step(last, near, mask, box, reach)
        if step is None:
            step = _entering_step(last, near, background, box, reach)
        if step is not None:
            yield filled(mask), step


def _leaving_step(
    last: np.ndarray,
    near: np.ndarray,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    reach: float,
) -> tuple[float, float] | None:
    """The step of a part moving out through the edge it touches, or None."""
    matched = matched_shift(last, near, mask, box, reach)
    if matched is None:
        return None
    step = (matched[0] / EDGE_SPAN, matched[1] / EDGE_SPAN)
    h, w = mask.shape
    crossing = edge_crossing(box, (-step[0], -step[1]), w, h)
    return step if crossing is not None and crossing[1] == "out" else None


def _entering_step(
    last: np.ndarray,
    near: np.ndarray,
    background: np.ndarray,
    box: tuple[int, int, int, int],
    reach: float,
) -> tuple[float, float] | None:
    """The step of a part moving in through the edge it touches (what of it `near` showed,
    found again in the last frame), or None."""
    h, w = last.shape[:2]
    x, y, width, height = box
    r = int(np.ceil(reach))
    window = (slice(max(0, y - r), y + height + r), slice(max(0, x - r), x + width + r))
    shown = np.zeros((h, w), bool)
    shown[window] = (largest_channel(cv2.absdiff(near, background)) > SUBJECT_MATCH)[window]
    shown = cv2.dilate(shown.astype(np.uint8), DISC3).astype(bool)  # its outline too
    if np.count_nonzero(shown) < MIN_SUBJECT_AREA:
        return None
    matched = matched_shift(near, last, shown, bounding_box(shown.astype(np.uint8)), reach)
    if matched is None:
        return None
    step = (-matched[0] / EDGE_SPAN, -matched[1] / EDGE_SPAN)
    crossing = edge_crossing(box, (-step[0], -step[1]), w, h)
    return step if crossing is not None and crossing[1] == "in" else None


def too_large(box: tuple[int, int, int, int], w: int, h: int) -> bool:
    return box[2] > MAX_SUBJECT_SPAN * w or box[3] > MAX_SUBJECT_SPAN * h


def _outward_speeds(
    box: tuple[int, int, int, int], velocity: tuple[float, float], w: int, h: int
) -> dict[str, float]:
    """For each edge of the frame that `box` touches, how fast `velocity` moves out
    through it (negative: in)."""
    x, y, width, height = box
    vx, vy = velocity
    touched = {"left": x == 0, "top": y == 0, "right": x + width == w, "bottom": y + height == h}
    outward = {"left": -vx, "top": -vy, "right": vx, "bottom": vy}
    return {edge: outward[edge] for edge, touches in touched.items() if touches}


def edge_crossing(
    box: tuple[int, int, int, int], velocity: tuple[float, float], w: int, h: int
) -> tuple[str, str] | None:
    """The edge a part at the frame's edge moves mostly through ("left", "top", "right" or
    "bottom"), and "in" or "out"; None when it moves along the edges it touches, or stands."""
    speed = float(np.hypot(*velocity))
    if speed * SUBJECT_STRIDE < MIN_SUBJECT_SHIFT:
        return None
    for edge, out in _outward_speeds(box, velocity, w, h).items():
        if abs(out) >= EDGE_CROSSING * speed:
            return edge, "out" if out > 0 else "in"
    return None


def held_by_edge(
    box: tuple[int, int, int, int], velocity: tuple[float, float], w: int, h: int
) -> bool:
    """Whether the part touches an edge of the frame and does not move out through one:
    then more of it is outside (a car driving in), or it is a piece of a layer the frame
    cuts (a cloud along the top). Moving it would show where it was cut."""
    outward = _outward_speeds(box, velocity, w, h)
    return bool(outward) and max(outward.values()) <= 0.0
