"""The cut-out: each moving part taken out of the last frame, the background behind it put
back, and the subject drawn further along its way in each new frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cinegen.engines.preview.extension.camera import as3, translation
from cinegen.engines.preview.extension.parts import largest_channel
from cinegen.engines.preview.extension.subjects import SUBJECT_CONTRAST, MovingPart

ENTERING_LENGTH = 1.6
"""How long a subject driving in is guessed to be, in its sizes across its way (a car's side
is about that): what is not yet in is not known."""
COMEBACK_GAP = 0.1
"""A subject that has left the frame comes in again through the opposite edge once it has
gone this share of the frame further (`_lapped`): soon, or a slow car would not be back
within the seven seconds of an extension."""


@dataclass(frozen=True)
class Subject:
    """A subject cut out of the last frame: RGB plus how much of each pixel is subject
    (alpha), placed at `origin`, moving at `velocity` against the camera. One that was
    wholly in the frame `comes_back` after it has left it (`_lapped`)."""

    patch: np.ndarray
    origin: tuple[int, int]
    velocity: tuple[float, float]
    comes_back: bool = False

    def draw(
        self,
        frame: np.ndarray,
        camera: np.ndarray,
        frames_on: int,
        view: np.ndarray | None = None,
    ) -> None:
        """Blend the subject into `frame`, `frames_on` frames after the last input frame;
        `view` (3×3), where given, moves the whole frame after that (a sample's drift)."""
        vx, vy = self.velocity
        place = translation(vx * frames_on, vy * frames_on) @ camera @ translation(*self.origin)
        h, w = self.patch.shape[:2]
        outline = np.array([[0, w, 0, w], [0, 0, h, h], [1, 1, 1, 1]], np.float64)
        corners = place[:2] @ outline
        if self.comes_back:
            laps = _lapped(corners, self.velocity, frame.shape[1], frame.shape[0])
            place = translation(*laps) @ place
            corners += np.array(laps)[:, None]
        if view is not None:
            place = view @ place
            corners = place[:2] @ outline
        left, top = (max(0, int(np.floor(v))) for v in corners.min(1))
        right = min(frame.shape[1], int(np.ceil(corners[0].max())) + 1)
        bottom = min(frame.shape[0], int(np.ceil(corners[1].max())) + 1)
        if right <= left or bottom <= top:
            return
        warped = cv2.warpAffine(
            self.patch,
            (translation(-left, -top) @ place)[:2],
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
    step = as3(motion)
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
        difference = largest_channel(cv2.absdiff(subject, background)).astype(np.float32)
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
            translation(-vx * back, -vy * back)[:2],
            (w, h),
            flags=cv2.INTER_NEAREST,
        )
        aligned = translation(-origin[0], -origin[1]) @ np.linalg.matrix_power(step, back)
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
