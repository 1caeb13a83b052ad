"""The subjects: compact parts of the last frame that move against the camera, each with its
own velocity, and the pixels that are each one's own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from cinegen.engines.preview.extension.camera import in_last_camera, to_grey, translation
from cinegen.engines.preview.extension.edges import (
    EDGE_SPAN,
    crossing_edges,
    edge_crossing,
    held_by_edge,
    too_large,
)
from cinegen.engines.preview.extension.parts import (
    DISC3,
    MAX_SUBJECTS,
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

SPAN_QUORUM = 3
"""Spans of the history that must agree on a subject's step when its shape changes."""
SPAN_AGREEMENT = 1.5
"""Small-copy pixels from the line through them within which a span's match agrees."""
FLOW_MARGIN = 1
"""Grey levels by which the flow must explain a pixel better than standing still."""
SURROUNDINGS_SHARE = 0.25
"""A part whose surroundings move more than this share of its own shift is not a subject."""
DETAIL_MIN_EIGEN = 1e-4
"""Smaller eigenvalue of the 5×5 structure tensor (`cv2.cornerMinEigenVal`) above which a
pixel has detail in two directions, so its flow can be trusted (along a plain line it can't)."""
DETAIL_SHARE = 0.25
"""The share of the band around a part that needs detail before its flow is believed."""
SUBJECT_CONTRAST = (10.0, 30.0)
"""Levels of difference from the background where a pixel starts and finishes being subject."""
_DISC5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
"""Two small-copy pixels around a subject: its cut-out takes them too (`cut_out_subjects`),
and a later subject leaves them out (the first one's rim, carried off as a thread)."""
_DISC9 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
_DISC17 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17))


@dataclass(frozen=True)
class MovingPart:
    """Where a part of the last frame moves against the camera (a small-copy mask), its
    velocity relative to the camera, in full-resolution pixels per frame, and the edge of
    the frame it is driving in through, if it is."""

    mask: np.ndarray
    velocity: tuple[float, float]
    entering: str | None = None


def find_moving_parts(
    history: list[np.ndarray], motion: np.ndarray, scale: float, stride: int = SUBJECT_STRIDE
) -> list[MovingPart]:
    """The compact parts of the last small frame that move against the camera, each with its
    velocity. Parts the frame's edge holds (`held_by_edge`) are left out; parts crossing
    an edge are looked for on their own (`crossing_edges`).

    Earlier frames are first brought into the last frame's camera, so what still moves
    between them is a subject. The flow over `stride` frames finds where, among the pixels
    that differ from the median of the earlier frames (on a plain road the flow spreads a
    car's motion all over the road, and the median is the road). Matching what stands out
    in the part's box gives its velocity (the flow inside a flat-coloured subject lags
    behind, and a match needs the subject's edges). The part's extent is where that
    velocity explains the earlier frames and standing still does not (`_subject_pixels`).
    What is left of a moving part once a subject is cut out of it is looked at again: two
    cars passing in neighbouring lanes move as one blob.

    The flow is taken twice, on the grey frames and on their differences from the median:
    a blue car's grey can be nearly the asphalt's, while its difference stands out.
    """
    stride = min(stride, len(history) - 1)
    if stride < 1:
        return []
    look = _looked_at(history, motion, scale, stride)
    parts, taken = _moving_parts(look)
    if len(history) <= EDGE_SPAN:
        return parts
    h, w = look.last.shape[:2]
    near = in_last_camera(history[-1 - EDGE_SPAN], motion, scale, EDGE_SPAN)
    seen = np.full((h, w), 255, np.uint8)
    seen = in_last_camera(seen, motion, scale, max(look.aligned), cv2.BORDER_CONSTANT) == 255
    free = look.standing_out & ~taken
    return parts + _parts_at_edges(look, near, seen, free, MAX_SUBJECTS - len(parts))


@dataclass(frozen=True)
class _Look:
    """What `find_moving_parts` measures once on the last small frame (`_looked_at`)."""

    last: np.ndarray
    aligned: dict[int, np.ndarray]
    """Earlier small frames, `back` frames before the last, in the last frame's camera."""
    background: np.ndarray
    """The median of the last frame and the aligned ones."""
    contrast: np.ndarray
    """How far each pixel of the last frame is from the background (largest of R, G, B)."""
    standing_out: np.ndarray
    detail: np.ndarray
    shift: np.ndarray
    """How far the flow over `stride` frames moves each pixel (the larger of two flows)."""
    believed: np.ndarray
    stride: int
    scale: float


def _looked_at(history: list[np.ndarray], motion: np.ndarray, scale: float, stride: int) -> _Look:
    last = history[-1]
    aligned = {
        back: in_last_camera(history[-1 - back], motion, scale, back)
        for back in range(stride, len(history), stride)
    }
    background = np.median(np.stack([last, *aligned.values()]), axis=0).astype(np.uint8)
    contrast = largest_channel(cv2.absdiff(last, background))
    standing_out = contrast > SUBJECT_MATCH
    standing_out = cv2.dilate(standing_out.astype(np.uint8), DISC3).astype(bool)
    grey = to_grey(last)
    detail = cv2.cornerMinEigenVal(grey, 5) > DETAIL_MIN_EIGEN
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    before = to_grey(aligned[stride])
    # cv2's stubs make calc's `flow` required; None asks for a new array.
    flow = dis.calc(grey, before, None)  # type: ignore[call-overload]
    shift = np.hypot(flow[..., 0], flow[..., 1])
    believed = _believed(flow, grey, before)
    contrast_before = largest_channel(cv2.absdiff(aligned[stride], background))
    contrast_flow = dis.calc(contrast, contrast_before, None)  # type: ignore[call-overload]
    shift = np.maximum(shift, np.hypot(contrast_flow[..., 0], contrast_flow[..., 1]))
    return _Look(
        last, aligned, background, contrast, standing_out, detail, shift, believed, stride, scale
    )


def _moving_parts(look: _Look) -> tuple[list[MovingPart], np.ndarray]:
    """The subjects among the parts whose flow moves (`_part_in`), largest first, and the
    pixels they took."""
    moving = ((look.shift > MIN_SUBJECT_SHIFT) & look.standing_out).astype(np.uint8)
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    parts: list[MovingPart] = []
    taken = np.zeros(look.last.shape[:2], bool)
    pieces = deque(largest_pieces(moving))
    while pieces and len(parts) < MAX_SUBJECTS:
        found = pieces.popleft()
        part = _part_in(look, found, taken)
        if part is None:
            continue
        taken |= part.mask
        parts.append(part)
        pieces.extend(
            largest_pieces(found & ~cv2.dilate(part.mask.astype(np.uint8), DISC3).astype(bool))
        )
    return parts, taken


def _part_in(look: _Look, found: np.ndarray, taken: np.ndarray) -> MovingPart | None:
    """The subject in the moving piece `found` (what stands out in its box, matched to give
    its velocity, then grown to its own pixels), less what earlier subjects `taken`; None
    where there is none."""
    h, w = look.last.shape[:2]
    box = bounding_box(found.astype(np.uint8))
    if too_large(box, w, h) or (found & taken).any():
        return None
    reach = 2 * float(np.percentile(look.shift[found], 90)) + max(box[2:]) / 2 + 4
    x, y, bw, bh = box
    whole = np.zeros_like(look.standing_out)
    whole[y : y + bh, x : x + bw] = look.standing_out[y : y + bh, x : x + bw]
    matched = matched_shift(look.last, look.aligned[look.stride], whole | found, box, reach)
    if matched is None:
        return None
    dx, dy = matched
    step = (dx / look.stride, dy / look.stride)
    around = _subject_around(look.last, look.aligned, step, look.standing_out, found, box)
    mask = around & ~cv2.dilate(taken.astype(np.uint8), _DISC5).astype(bool)
    if (
        np.count_nonzero(mask) < max(MIN_SUBJECT_AREA, np.count_nonzero(around) / 2)
        or _faint(mask, look.contrast)
        or _moves_with_surroundings(mask, look.believed, look.detail, (dx, dy))
    ):
        return None
    box = bounding_box(mask.astype(np.uint8))
    dx, dy = _over_longer_span(look.last, look.aligned, mask, box, step)
    vx, vy = -dx / look.scale, -dy / look.scale
    if too_large(box, w, h) or held_by_edge(box, (vx, vy), w, h):
        return None
    return MovingPart(mask, (vx, vy))


def _parts_at_edges(
    look: _Look, near: np.ndarray, seen: np.ndarray, free: np.ndarray, room: int
) -> list[MovingPart]:
    """Up to `room` subjects crossing the frame's edge (`crossing_edges`), among the `free`
    pixels that stand out and no subject took."""
    h, w = look.last.shape[:2]
    parts: list[MovingPart] = []
    for mask, (dx, dy) in crossing_edges(look.last, near, look.background, free, seen):
        box = bounding_box(mask.astype(np.uint8))
        if (
            len(parts) == room
            or _faint(mask, look.contrast)
            or _moves_with_surroundings(
                mask, look.believed, look.detail, (dx * look.stride, dy * look.stride)
            )
            or too_large(box, w, h)
        ):
            continue
        crossing = edge_crossing(box, (-dx, -dy), w, h)  # as `crossing_edges` found it
        entering = crossing[0] if crossing is not None and crossing[1] == "in" else None
        parts.append(MovingPart(mask, (-dx / look.scale, -dy / look.scale), entering))
    return parts


def _believed(flow: np.ndarray, grey: np.ndarray, before: np.ndarray) -> np.ndarray:
    """`flow`, zeroed where it explains `before` no better than standing still does (over
    5×5 pixels, by FLOW_MARGIN): DIS spreads a subject's motion onto the still background
    around it, and a pixel of a moving layer is explained better by its flow."""
    h, w = grey.shape
    grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
    moved = cv2.remap(before, grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]  # OpenCV 4 stubs: map2 may be None
    if_moving = cv2.blur(cv2.absdiff(grey, moved).astype(np.float32), (5, 5))
    if_still = cv2.blur(cv2.absdiff(grey, before).astype(np.float32), (5, 5))
    return flow * (if_moving + FLOW_MARGIN < if_still)[..., None]


def _subject_around(
    last: np.ndarray,
    aligned: dict[int, np.ndarray],
    step: tuple[float, float],
    standing_out: np.ndarray,
    found: np.ndarray,
    box: tuple[int, int, int, int],
) -> np.ndarray:
    """The subject's pixels (`_subject_pixels`), looked for within a box's size around `box`;
    twice, the second time knowing where the subject hid the background (`_witnesses`)."""
    h, w = last.shape[:2]
    x, y, width, height = box
    margin = max(width, height) + 4
    left, top = max(0, x - margin), max(0, y - margin)
    right, bottom = min(w, x + width + margin), min(h, y + height + margin)
    window = (slice(top, bottom), slice(left, right))
    first = _subject_pixels(
        _witnesses(last, aligned, window, step), standing_out[window], found[window]
    )
    subject = _subject_pixels(
        _witnesses(last, aligned, window, step, first), standing_out[window], first
    )
    mask = np.zeros((h, w), bool)
    mask[window] = subject
    return mask


def _over_longer_span(
    last: np.ndarray,
    aligned: dict[int, np.ndarray],
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    step: tuple[float, float],
) -> tuple[float, float]:
    """`step` (small-copy pixels per frame) measured again over the last second: a tenth of
    a pixel in the match is then a 24th as much per frame.

    Where that second's match is not where `step` puts the subject, either it turned or
    sped up (kept as it was), or its shape changes from frame to frame, as a walker's legs
    swing, and the six-frame step was off (up or down: the walker climbed out of the frame).
    Then every span of the history is matched, and the slope of the line through what they
    find is the step if at least SPAN_QUORUM of them lie on it (`_steady_slope`)."""
    far = max(back for back in aligned if back <= 4 * SUBJECT_STRIDE)
    guess = (step[0] * far, step[1] * far)
    reach = 2 + 0.25 * float(np.hypot(*guess))
    found = matched_shift(last, aligned[far], mask, box, reach, guess)
    if found is not None and np.hypot(found[0] - guess[0], found[1] - guess[1]) < reach:
        return found[0] / far, found[1] / far
    backs, shifts = [], []
    for back in sorted(back for back in aligned if back > SUBJECT_STRIDE):
        guess = (step[0] * back, step[1] * back)
        shift = matched_shift(last, aligned[back], mask, box, 2 + 0.5 * np.hypot(*guess), guess)
        if shift is not None:
            backs.append(back)
            shifts.append(shift)
    return _steady_slope(np.array(backs, np.float64), np.array(shifts, np.float64)) or step


def _steady_slope(spans: np.ndarray, shifts: np.ndarray) -> tuple[float, float] | None:
    """The slope of the line through the shifts (N × 2) found over `spans` frames: Siegel's
    repeated median of the slopes between every two of them (up to half may be astray);
    None unless SPAN_QUORUM of them lie within SPAN_AGREEMENT of it."""
    if len(spans) < SPAN_QUORUM:
        return None
    apart = spans[None, :] - spans[:, None]
    np.fill_diagonal(apart, np.nan)
    slopes = (shifts[None, :, :] - shifts[:, None, :]) / apart[..., None]
    slope = np.nanmedian(np.nanmedian(slopes, axis=1), axis=0)
    left = shifts - np.outer(spans, slope)  # the offset and each span's miss
    misses = np.hypot(*(left - np.median(left, axis=0)).T)
    if np.count_nonzero(misses <= SPAN_AGREEMENT) < SPAN_QUORUM:
        return None
    return float(slope[0]), float(slope[1])


def _faint(mask: np.ndarray, contrast: np.ndarray) -> bool:
    """Whether most of the part differs from the median of the earlier frames by less than
    a clear step: a wisp of cloud on a drifting sky, whose cut edges would show."""
    return float(np.median(contrast[mask])) < SUBJECT_CONTRAST[1]


def _moves_with_surroundings(
    mask: np.ndarray, flow: np.ndarray, detail: np.ndarray, shift: tuple[float, float]
) -> bool:
    """Whether the band 4 to 8 small-copy pixels around `mask` moves a good part as far as
    the part itself: then it is a piece of a depth layer (say the near sand of a tracking
    shot) that the flow split off, not a subject moving over a background.

    `flow` is the believed flow (`_believed`): the raw flow next to a car drags the still
    road and the car it follows along with it. Only the band's pixels with `detail` count,
    and only when there are enough of them: on a plain road, or along its painted line, the
    flow just spreads the car's motion around it (and its headlight, outside the part,
    moves with it). A subject on a plain background is a subject.
    """
    grown = mask.astype(np.uint8)
    band = cv2.dilate(grown, _DISC17).astype(bool) & ~cv2.dilate(grown, _DISC9).astype(bool)
    trusted = band & detail
    if np.count_nonzero(trusted) < DETAIL_SHARE * np.count_nonzero(band):
        return False
    around = np.median(flow[trusted], axis=0)
    return float(np.hypot(*around)) > SURROUNDINGS_SHARE * float(np.hypot(*shift))


def _witnesses(
    last: np.ndarray,
    aligned: dict[int, np.ndarray],
    window: tuple[slice, slice],
    step: tuple[float, float],
    subject: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Where some earlier frame is explained by moving `step` per frame (small-copy pixels,
    pointing back to where they were) and not by standing still, and where the reverse.

    Looked at only in `window` of the last frame (the answers are window-sized, and so is
    `subject`). Given the `subject`'s pixels, a frame is no witness for moving where the
    subject itself covered the pixel then: the background just behind a subject on a plain
    road was hidden by it in every earlier frame, and standing still explains that too.

    A pixel whose earlier place was outside some earlier frame came in through the edge
    since (the back of a car that has just driven in). If no frame that can check it tells
    moving from standing still (a flat car overlapped itself in the others), it counts as
    moving, so the car is cut out whole and none of it is left at the edge.
    """
    rows, columns = window
    here = last[window]
    h, w = here.shape[:2]
    for_moving = np.zeros((h, w), bool)
    for_still = np.zeros((h, w), bool)
    decided = np.zeros((h, w), bool)
    came_in = np.zeros((h, w), bool)
    in_frame = np.ones(last.shape[:2], np.uint8)
    for back, before in aligned.items():
        mx, my = step[0] * back, step[1] * back
        to_where_it_was = translation(mx + columns.start, my + rows.start)[:2]
        where_it_was = cv2.warpAffine(
            before,
            to_where_it_was,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        inside = cv2.warpAffine(
            in_frame, to_where_it_was, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        ).astype(bool)
        if_moving = largest_channel(cv2.absdiff(here, where_it_was)) <= SUBJECT_MATCH
        if_still = largest_channel(cv2.absdiff(here, before[window])) <= SUBJECT_MATCH
        if_still &= inside  # where moving can't be checked, standing still proves nothing
        decided |= inside & (if_moving != if_still)
        came_in |= ~inside
        witness = if_moving & ~if_still & inside
        if subject is not None:
            hidden = cv2.warpAffine(
                subject.astype(np.uint8), translation(mx, my)[:2], (w, h), flags=cv2.INTER_NEAREST
            )
            witness &= hidden == 0
        for_moving |= witness
        for_still |= if_still & ~if_moving
    return for_moving | (came_in & ~decided), for_still


def _subject_pixels(
    witnesses: tuple[np.ndarray, np.ndarray], standing_out: np.ndarray, found: np.ndarray
) -> np.ndarray:
    """The pixels with a witness for moving and none for standing still (`_witnesses`) that
    stand out from the background.

    Kept: the parts that touch `found`, opened (chance matches on a busy background leave
    thin threads) and with their holes filled (a flat subject overlapping its earlier place
    leaves both hypotheses true there).
    """
    for_moving, for_still = witnesses
    subject = (for_moving & ~for_still & standing_out).astype(np.uint8)
    subject = cv2.morphologyEx(subject, cv2.MORPH_OPEN, DISC3)
    count, labels = cv2.connectedComponents(subject, connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[found])] = True
    keep[0] = False
    return filled(keep[labels])
