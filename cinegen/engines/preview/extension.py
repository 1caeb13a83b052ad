"""Extension: the input video, unchanged, then more seconds that continue its last motion.

Steps, top to bottom:
1. Stream the input frames through, keeping only its last two seconds (extension inputs are
   720p: about 135 MB). Small copies of those are what motion is measured on.
2. The camera: the global motion of the last second as an affine per frame (dense DIS flow,
   robust least squares: deterministic, no RANSAC).
3. The subjects: compact parts of the last frame that still move once the earlier frames
   are brought into its camera, each with its own velocity (`find_moving_parts`).
4. The background behind each subject: the median of the earlier frames that show it
   (aligned by the camera's motion); what no frame shows is inpainted. A subject is what
   differs from that background (`cut_out_subjects`).
5. Each new frame: the background moved on by the camera, each subject moved on by the
   camera and its own velocity, then the prompt's weather. So the seam is no bigger a step
   than the input's own frame steps. A subject driving in through an edge brings a guess
   of the rest of it (its visible part mirrored); one that was wholly in the frame comes
   in again through the opposite edge after it has left; parts too large to be a subject and
   pieces of depth layers stay part of the background (they move with the camera's
   average).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from cinegen.engines.base import InputVideo
from cinegen.engines.preview.particles import Field, draw_fields
from cinegen.engines.preview.warp import four_channels, three_channels
from cinegen.media.decode import fit_image, iter_video_frames

MOTION_LONG_SIDE = 320
HISTORY_SECONDS = 2.0
"""How much of the input's end is kept: the camera is measured on its last second; a subject
needs longer to uncover the background behind it (a car its own length)."""
FADE_IN_SECONDS = 1.0
GRID_STEP = 4
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
SPAN_QUORUM = 3
"""Spans of the history that must agree on a subject's step when its shape changes."""
SPAN_AGREEMENT = 1.5
"""Small-copy pixels from the line through them within which a span's match agrees."""
SUBJECT_MATCH = 24
"""Levels (largest of R, G, B) within which a small-copy pixel is taken to match."""
FLOW_MARGIN = 1
"""Grey levels by which the flow must explain a pixel better than standing still."""
SURROUNDINGS_SHARE = 0.25
"""A part whose surroundings move more than this share of its own shift is not a subject."""
DETAIL_MIN_EIGEN = 1e-4
"""Smaller eigenvalue of the 5×5 structure tensor (`cv2.cornerMinEigenVal`) above which a
pixel has detail in two directions, so its flow can be trusted (along a plain line it can't)."""
DETAIL_SHARE = 0.25
"""The share of the band around a part that needs detail before its flow is believed."""
EDGE_SPAN = 3
"""Frames back that a subject crossing the frame's edge is matched against: it must still
show enough of itself (a car entering shows more of itself each frame)."""
EDGE_MAX_SPEED = 5.0
"""Small-copy pixels per frame: the fastest subject crossing the edge that is looked for."""
EDGE_CROSSING = 0.5
"""The share of its speed a part must move through the edge at to be crossing it."""
ENTERING_LENGTH = 1.6
"""How long a subject driving in is guessed to be, in its sizes across its way (a car's side
is about that): what is not yet in is not known."""
COMEBACK_GAP = 0.1
"""A subject that has left the frame comes in again through the opposite edge once it has
gone this share of the frame further (`_lapped`): soon, or a slow car would not be back
within the seven seconds of an extension."""
SUBJECT_CONTRAST = (10.0, 30.0)
"""Levels of difference from the background where a pixel starts and finishes being subject."""
_DISC3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_DISC5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
"""Two small-copy pixels around a subject: its cut-out takes them too (`cut_out_subjects`),
and a later subject leaves them out (the first one's rim, carried off as a thread)."""
_DISC9 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
_DISC17 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17))


def _small(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return frame
    size = (max(8, round(frame.shape[1] * scale)), max(8, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _largest_channel(rgb: np.ndarray) -> np.ndarray:
    """The largest of R, G and B at each pixel (OpenCV: a NumPy max over the last axis of an
    H × W × 3 array is several times slower)."""
    red, green, blue = cv2.split(rgb)
    return cv2.max(cv2.max(red, green), blue)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def fit_affine(flow: np.ndarray, step: int = GRID_STEP) -> np.ndarray:
    """The 2×3 affine that best explains `flow` (iteratively reweighted least squares)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h:step, 0:w:step].astype(np.float64)
    src = np.stack([xs.ravel(), ys.ravel()], 1)
    dst = src + flow[::step, ::step].reshape(-1, 2).astype(np.float64)
    design = np.concatenate([src, np.ones((len(src), 1))], 1)
    weights = np.ones(len(src))
    params = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    for _ in range(5):
        sw = np.sqrt(weights)[:, None]
        params, *_ = np.linalg.lstsq(design * sw, dst * sw, rcond=None)
        residual = np.linalg.norm(design @ params - dst, axis=1)
        scale = max(1e-3, float(np.median(residual)) * 1.5)
        weights = 1.0 / np.maximum(1.0, residual / scale)  # Huber-like
    return params.T


def _to_full(affine: np.ndarray, scale: float) -> np.ndarray:
    """An affine measured on a copy scaled by `scale`, in full-resolution pixels."""
    full = affine.copy()
    full[:, 2] /= scale
    return full


def _as3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def measure_motion(history: list[np.ndarray], scale: float, stride: int = 4) -> np.ndarray:
    """The typical per-frame affine of the small RGB frames in `history` (element-wise median).

    Measured between frames `stride` apart and divided back down to one frame: a zoom changes
    the scale by a fraction of a percent per frame, which encoding noise would swamp in the
    flow between neighbouring frames.
    """
    if len(history) < 2:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    stride = min(stride, len(history) - 1)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    affines = []
    greys = [_grey(frame) for frame in history]
    for before, after in zip(greys[:-stride], greys[stride:], strict=True):
        flow = dis.calc(before, after, None)
        affines.append(identity + (_to_full(fit_affine(flow), scale) - identity) / stride)
    recent = np.stack(affines[-12:])
    return np.median(recent, axis=0)


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
    velocity. Parts the frame's edge holds (`_held_by_edge`) are left out; parts crossing
    an edge are looked for on their own (`_crossing_edges`).

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
    last = history[-1]
    h, w = last.shape[:2]
    aligned = {
        back: _in_last_camera(history[-1 - back], motion, scale, back)
        for back in range(stride, len(history), stride)
    }
    background = np.median(np.stack([last, *aligned.values()]), axis=0).astype(np.uint8)
    contrast = _largest_channel(cv2.absdiff(last, background))
    standing_out = contrast > SUBJECT_MATCH
    standing_out = cv2.dilate(standing_out.astype(np.uint8), _DISC3).astype(bool)
    grey = _grey(last)
    detail = cv2.cornerMinEigenVal(grey, 5) > DETAIL_MIN_EIGEN
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    before = _grey(aligned[stride])
    flow = dis.calc(grey, before, None)
    shift = np.hypot(flow[..., 0], flow[..., 1])
    believed = _believed(flow, grey, before)
    contrast_before = _largest_channel(cv2.absdiff(aligned[stride], background))
    contrast_flow = dis.calc(contrast, contrast_before, None)
    shift = np.maximum(shift, np.hypot(contrast_flow[..., 0], contrast_flow[..., 1]))
    moving = ((shift > MIN_SUBJECT_SHIFT) & standing_out).astype(np.uint8)
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    parts: list[MovingPart] = []
    taken = np.zeros((h, w), bool)
    pieces = deque(_largest_pieces(moving))
    while pieces and len(parts) < MAX_SUBJECTS:
        found = pieces.popleft()
        box = cv2.boundingRect(found.astype(np.uint8))
        if _too_large(box, w, h) or (found & taken).any():
            continue
        reach = 2 * float(np.percentile(shift[found], 90)) + max(box[2:]) / 2 + 4
        x, y, bw, bh = box
        whole = np.zeros_like(standing_out)
        whole[y : y + bh, x : x + bw] = standing_out[y : y + bh, x : x + bw]
        matched = _matched_shift(last, aligned[stride], whole | found, box, reach)
        if matched is None:
            continue
        dx, dy = matched
        step = (dx / stride, dy / stride)
        around = _subject_around(last, aligned, step, standing_out, found, box)
        mask = around & ~cv2.dilate(taken.astype(np.uint8), _DISC5).astype(bool)
        if (
            np.count_nonzero(mask) < max(MIN_SUBJECT_AREA, np.count_nonzero(around) / 2)
            or _faint(mask, contrast)
            or _moves_with_surroundings(mask, believed, detail, (dx, dy))
        ):
            continue
        box = cv2.boundingRect(mask.astype(np.uint8))
        dx, dy = _over_longer_span(last, aligned, mask, box, step)
        vx, vy = -dx / scale, -dy / scale
        if _too_large(box, w, h) or _held_by_edge(box, (vx, vy), w, h):
            continue
        taken |= mask
        parts.append(MovingPart(mask, (vx, vy)))
        pieces.extend(
            _largest_pieces(found & ~cv2.dilate(mask.astype(np.uint8), _DISC3).astype(bool))
        )
    if len(history) <= EDGE_SPAN:
        return parts
    near = _in_last_camera(history[-1 - EDGE_SPAN], motion, scale, EDGE_SPAN)
    seen = np.full((h, w), 255, np.uint8)
    seen = _in_last_camera(seen, motion, scale, max(aligned), cv2.BORDER_CONSTANT) == 255
    for mask, (dx, dy) in _crossing_edges(last, near, background, standing_out & ~taken, seen):
        box = cv2.boundingRect(mask.astype(np.uint8))
        if (
            len(parts) == MAX_SUBJECTS
            or _faint(mask, contrast)
            or _moves_with_surroundings(mask, believed, detail, (dx * stride, dy * stride))
            or _too_large(box, w, h)
        ):
            continue
        crossing = _crossing(box, (-dx, -dy), w, h)  # as `_crossing_edges` found it
        entering = crossing[0] if crossing is not None and crossing[1] == "in" else None
        parts.append(MovingPart(mask, (-dx / scale, -dy / scale), entering))
    return parts


def _largest_pieces(moving: np.ndarray) -> list[np.ndarray]:
    """The MAX_SUBJECTS largest connected parts of `moving` of at least MIN_SUBJECT_AREA
    pixels, largest first."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        moving.astype(np.uint8), connectivity=8
    )
    largest = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:MAX_SUBJECTS] + 1
    return [
        labels == label for label in largest if stats[label, cv2.CC_STAT_AREA] >= MIN_SUBJECT_AREA
    ]


def _crossing_edges(
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
    for mask in _largest_pieces(free):
        box = cv2.boundingRect(mask.astype(np.uint8))
        if not _outward_speeds(box, (0.0, 0.0), w, h):  # it touches no edge
            continue
        if np.count_nonzero(mask & seen) < 0.5 * np.count_nonzero(mask):
            continue
        step = _leaving_step(last, near, mask, box, reach)
        if step is None:
            step = _entering_step(last, near, background, box, reach)
        if step is not None:
            yield _filled(mask), step


def _leaving_step(
    last: np.ndarray,
    near: np.ndarray,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    reach: float,
) -> tuple[float, float] | None:
    """The step of a part moving out through the edge it touches, or None."""
    matched = _matched_shift(last, near, mask, box, reach)
    if matched is None:
        return None
    step = (matched[0] / EDGE_SPAN, matched[1] / EDGE_SPAN)
    h, w = mask.shape
    crossing = _crossing(box, (-step[0], -step[1]), w, h)
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
    shown[window] = (_largest_channel(cv2.absdiff(near, background)) > SUBJECT_MATCH)[window]
    shown = cv2.dilate(shown.astype(np.uint8), _DISC3).astype(bool)  # its outline too
    if np.count_nonzero(shown) < MIN_SUBJECT_AREA:
        return None
    matched = _matched_shift(near, last, shown, cv2.boundingRect(shown.astype(np.uint8)), reach)
    if matched is None:
        return None
    step = (-matched[0] / EDGE_SPAN, -matched[1] / EDGE_SPAN)
    crossing = _crossing(box, (-step[0], -step[1]), w, h)
    return step if crossing is not None and crossing[1] == "in" else None


def _believed(flow: np.ndarray, grey: np.ndarray, before: np.ndarray) -> np.ndarray:
    """`flow`, zeroed where it explains `before` no better than standing still does (over
    5×5 pixels, by FLOW_MARGIN): DIS spreads a subject's motion onto the still background
    around it, and a pixel of a moving layer is explained better by its flow."""
    h, w = grey.shape
    grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
    moved = cv2.remap(before, grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
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


def _in_last_camera(
    frame: np.ndarray,
    motion: np.ndarray,
    scale: float,
    back: int,
    border: int = cv2.BORDER_REPLICATE,
) -> np.ndarray:
    """A small frame from `back` frames before the last, moved into the last one's camera
    (what it did not show filled by `border`)."""
    to_small = np.diag([scale, scale, 1.0])
    undo = to_small @ np.linalg.matrix_power(np.linalg.inv(_as3(motion)), back)
    undo = undo @ np.linalg.inv(to_small)  # last frame's pixel → that frame's pixel
    return cv2.warpAffine(
        frame,
        undo[:2],
        (frame.shape[1], frame.shape[0]),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
    )


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
    found = _matched_shift(last, aligned[far], mask, box, reach, guess)
    if found is not None and np.hypot(found[0] - guess[0], found[1] - guess[1]) < reach:
        return found[0] / far, found[1] / far
    backs, shifts = [], []
    for back in sorted(back for back in aligned if back > SUBJECT_STRIDE):
        guess = (step[0] * back, step[1] * back)
        shift = _matched_shift(last, aligned[back], mask, box, 2 + 0.5 * np.hypot(*guess), guess)
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


def _too_large(box: tuple[int, int, int, int], w: int, h: int) -> bool:
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


def _crossing(
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


def _held_by_edge(
    box: tuple[int, int, int, int], velocity: tuple[float, float], w: int, h: int
) -> bool:
    """Whether the part touches an edge of the frame and does not move out through one:
    then more of it is outside (a car driving in), or it is a piece of a layer the frame
    cuts (a cloud along the top). Moving it would show where it was cut."""
    outward = _outward_speeds(box, velocity, w, h)
    return bool(outward) and max(outward.values()) <= 0.0


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
        to_where_it_was = _shift(mx + columns.start, my + rows.start)[:2]
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
        if_moving = _largest_channel(cv2.absdiff(here, where_it_was)) <= SUBJECT_MATCH
        if_still = _largest_channel(cv2.absdiff(here, before[window])) <= SUBJECT_MATCH
        if_still &= inside  # where moving can't be checked, standing still proves nothing
        decided |= inside & (if_moving != if_still)
        came_in |= ~inside
        witness = if_moving & ~if_still & inside
        if subject is not None:
            hidden = cv2.warpAffine(
                subject.astype(np.uint8), _shift(mx, my)[:2], (w, h), flags=cv2.INTER_NEAREST
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
    subject = cv2.morphologyEx(subject, cv2.MORPH_OPEN, _DISC3)
    count, labels = cv2.connectedComponents(subject, connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[found])] = True
    keep[0] = False
    return _filled(keep[labels])


def _filled(mask: np.ndarray) -> np.ndarray:
    """`mask` with every region it encloses filled in."""
    h, w = mask.shape
    outside = np.zeros((h + 2, w + 2), np.uint8)
    outside[1:-1, 1:-1] = mask
    cv2.floodFill(outside, None, (0, 0), 2)
    return outside[1:-1, 1:-1] != 2


def _matched_shift(
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


@dataclass(frozen=True)
class Subject:
    """A subject cut out of the last frame: RGB plus how much of each pixel is subject
    (alpha), placed at `origin`, moving at `velocity` against the camera. One that was
    wholly in the frame `comes_back` after it has left it (`_lapped`)."""

    patch: np.ndarray
    origin: tuple[int, int]
    velocity: tuple[float, float]
    comes_back: bool = False

    def draw(self, frame: np.ndarray, camera: np.ndarray, frames_on: int) -> None:
        """Blend the subject into `frame`, `frames_on` frames after the last input frame."""
        vx, vy = self.velocity
        place = _shift(vx * frames_on, vy * frames_on) @ camera @ _shift(*self.origin)
        h, w = self.patch.shape[:2]
        corners = place[:2] @ np.array([[0, w, 0, w], [0, 0, h, h], [1, 1, 1, 1]], np.float64)
        if self.comes_back:
            laps = _lapped(corners, self.velocity, frame.shape[1], frame.shape[0])
            place = _shift(*laps) @ place
            corners += np.array(laps)[:, None]
        left, top = (max(0, int(np.floor(v))) for v in corners.min(1))
        right = min(frame.shape[1], int(np.ceil(corners[0].max())) + 1)
        bottom = min(frame.shape[0], int(np.ceil(corners[1].max())) + 1)
        if right <= left or bottom <= top:
            return
        warped = cv2.warpAffine(
            self.patch,
            (_shift(-left, -top) @ place)[:2],
            (right - left, bottom - top),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        alpha = warped[..., 3:].astype(np.float32) * np.float32(1 / 255)
        region = frame[top:bottom, left:right]
        blended = region + (warped[..., :3] - region.astype(np.float32)) * alpha
        region[:] = np.rint(blended).astype(np.uint8)


def _lapped(
    corners: np.ndarray, velocity: tuple[float, float], width: int, height: int
) -> tuple[float, float]:
    """How far to move a subject (the corners of its patch) that has left the frame so that
    it comes in again through the opposite edge: whole laps of the frame, plus its own
    size and COMEBACK_GAP of the frame, along each axis it moves on. The text engine's cars
    and people come back so too, and a long chain of extensions keeps its traffic instead
    of ending on an empty street."""
    laps = []
    for axis, (speed, extent) in enumerate(zip(velocity, (width, height), strict=True)):
        low, high = float(corners[axis].min()), float(corners[axis].max())
        size, centre = high - low, (low + high) / 2
        gap = COMEBACK_GAP * extent
        if abs(speed) < 1e-3:
            laps.append(0.0)
            continue
        start = -size / 2 - (gap if speed > 0 else 0.0)  # it waits off the edge it enters by
        lap = extent + size + gap
        laps.append(start + (centre - start) % lap - centre)
    return laps[0], laps[1]


def cut_out_subjects(
    frames: list[np.ndarray], parts: list[MovingPart], motion: np.ndarray
) -> tuple[np.ndarray, list[Subject]]:
    """The last frame with each moving part replaced by the background behind it, and the
    subjects cut out of it.

    Behind a part that moves at v, frame −d shows the background wherever the part, then at
    its place less v·d, did not cover. Each pixel gets the median of the frames that show
    it (every other frame: other subjects passing by are outvoted); what no frame shows is
    inpainted.
    """
    last = frames[-1]
    height, width = last.shape[:2]
    plate = last.copy()
    step = _as3(motion)
    subjects = []
    for part in parts:
        hole = cv2.resize(
            part.mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
        )
        grow = 4 * round(width / part.mask.shape[1]) + 1  # two small-copy pixels around
        hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
        x0, y0, w, h = cv2.boundingRect(hole)
        box = hole[y0 : y0 + h, x0 : x0 + w]
        background = _background_behind(frames, box, (x0, y0), part.velocity, step)
        subject = last[y0 : y0 + h, x0 : x0 + w]
        difference = _largest_channel(cv2.absdiff(subject, background)).astype(np.float32)
        low, high = SUBJECT_CONTRAST
        alpha = np.clip((difference - low) / (high - low), 0.0, 1.0) * (box > 0)
        alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
        plate[y0 : y0 + h, x0 : x0 + w][box > 0] = background[box > 0]
        patch = np.dstack([subject, np.rint(alpha * 255).astype(np.uint8)])
        whole = x0 > 0 and y0 > 0 and x0 + w < width and y0 + h < height
        if part.entering is not None:
            patch, (x0, y0) = _mirrored_out(patch, (x0, y0), part.entering)
        subjects.append(Subject(patch, (x0, y0), part.velocity, comes_back=whole))
    return plate, subjects


def _mirrored_out(
    patch: np.ndarray, origin: tuple[int, int], edge: str
) -> tuple[np.ndarray, tuple[int, int]]:
    """A subject driving in through `edge` with the rest of it guessed: its visible part
    mirrored across the edge, until it is ENTERING_LENGTH times as long as it is across its
    way, or all of it if less. A car nearly in gets little or nothing (mirrored whole, it
    would look like two cars), and one whose back is already clear of the edge nothing."""
    x, y = origin
    h, w = patch.shape[:2]
    at_edge = {"left": patch[:, 0], "right": patch[:, -1], "top": patch[0], "bottom": patch[-1]}
    if at_edge[edge][:, 3].max() < 128:
        return patch, origin
    along, across = (w, h) if edge in ("left", "right") else (h, w)
    depth = int(np.clip(round(ENTERING_LENGTH * across) - along, 0, along))
    if edge == "left":
        return np.hstack([patch[:, :depth][:, ::-1], patch]), (x - depth, y)
    if edge == "right":
        return np.hstack([patch, patch[:, w - depth :][:, ::-1]]), (x, y)
    if edge == "top":
        return np.vstack([patch[:depth][::-1], patch]), (x, y - depth)
    return np.vstack([patch, patch[h - depth :][::-1]]), (x, y)


def _background_behind(
    frames: list[np.ndarray],
    box: np.ndarray,
    origin: tuple[int, int],
    velocity: tuple[float, float],
    step: np.ndarray,
) -> np.ndarray:
    """The background in `box` (at `origin` of the last frame, where a part moving at
    `velocity` covers its nonzero pixels), from the earlier frames that show it."""
    h, w = box.shape
    vx, vy = velocity
    shown: list[np.ndarray] = []
    seen: list[np.ndarray] = []
    for back in range(1, len(frames), 2):
        was_there = cv2.warpAffine(
            box,
            _shift(-vx * back, -vy * back)[:2],
            (w, h),
            flags=cv2.INTER_NEAREST,
        )
        aligned = _shift(-origin[0], -origin[1]) @ np.linalg.matrix_power(step, back)
        earlier = cv2.warpAffine(
            frames[-1 - back],
            aligned[:2],
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        shown.append(np.where((was_there == 0)[..., None], earlier.astype(np.uint16), 256))
        seen.append(was_there == 0)
    last = frames[-1][origin[1] : origin[1] + h, origin[0] : origin[0] + w]
    if not shown:
        return cv2.inpaint(last, box, 3, cv2.INPAINT_TELEA)
    values = np.sort(np.stack(shown), axis=0)  # unseen (256) sorts last
    count = np.sum(seen, axis=0)
    middle = (np.maximum(count, 1) - 1) // 2
    background = np.take_along_axis(values, middle[None, ..., None], axis=0)[0].astype(np.uint8)
    background = np.where((box == 0)[..., None], last, background)
    missing = ((count == 0) & (box > 0)).astype(np.uint8)
    if missing.any():
        background = cv2.inpaint(background, missing, 3, cv2.INPAINT_TELEA)
    return background


class Extension:
    """The input's frames, then more that carry on its camera and subjects: `num_frames`."""

    def __init__(
        self,
        video: InputVideo,
        width: int,
        height: int,
        fps: int,
        num_frames: int,
        weather: list[Field] | None = None,
    ) -> None:
        self.video = video
        self.weather = weather or []
        self.size = (width, height)
        self.fps = fps
        self.num_frames = num_frames
        self.scale = min(1.0, MOTION_LONG_SIDE / max(width, height))
        self.input_frames = 0
        self.motion: np.ndarray | None = None
        self.subjects: list[Subject] = []

    def _input(self) -> Iterator[np.ndarray]:
        width, height = self.size
        for frame in iter_video_frames(self.video.path):
            if frame.shape[1] != width or frame.shape[0] != height:
                frame = fit_image(frame, width, height)
            yield frame

    def frames(self) -> Iterator[np.ndarray]:
        kept = round(HISTORY_SECONDS * self.fps) + 1
        recent: deque[np.ndarray] = deque(maxlen=kept)
        for frame in self._input():
            if self.input_frames == self.num_frames:
                return
            recent.append(frame)
            self.input_frames += 1
            yield frame
        if not recent:
            return
        history = [_small(frame, self.scale) for frame in recent]
        self.motion = measure_motion(history[-self.fps - 1 :], self.scale)
        parts = find_moving_parts(history, self.motion, self.scale)
        plate, self.subjects = cut_out_subjects(list(recent), parts, self.motion)
        recent.clear()
        yield from self._continue(plate, self.motion, self.num_frames - self.input_frames)

    def _continue(self, plate: np.ndarray, motion: np.ndarray, count: int) -> Iterator[np.ndarray]:
        """Apply the motion again and again to the background (composed, so no drift), and
        draw each subject further along its own way.

        The prompt's weather (rain, snow, sparks) falls over the new part, fading in over a
        second so the seam stays as smooth as the input's own frame steps.
        """
        step = _as3(motion)
        total = np.eye(3)
        width, height = self.size
        source = four_channels(plate)
        for index in range(count):
            total = step @ total
            warped = cv2.warpAffine(
                source,
                total[:2],
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT101,
            )
            frame = three_channels(warped)
            for subject in self.subjects:
                subject.draw(frame, total, index + 1)
            if self.weather:
                seconds = (index + 1) / self.fps
                draw_fields(frame, self.weather, seconds, share=seconds / FADE_IN_SECONDS)
            yield frame
