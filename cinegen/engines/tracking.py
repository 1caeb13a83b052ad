"""An object under a mask, tracked over a still camera's video (both engines' REMOVE edits),
and the mask itself at the output size (every mask edit of both engines).

The background is the temporal median of the video (a car that drives through leaves the
median clean); the object is the foreground near where its last velocity puts it. An object
that never moves is part of the median: `moves` says so, and the engine inpaints it instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

import cv2
import numpy as np

from cinegen.core.errors import EngineError

MEDIAN_SAMPLES = 31
"""Frames the background median is taken over (odd: the median is one of them)."""
FOREGROUND_LEVEL = 30
"""Levels (largest of R, G, B) by which a pixel differs from the background to be foreground."""
MOVING_SHARE = 0.3
"""The share of the masked pixels on frame 1 that must differ from the background for the
object to be tracked; less, and it stands still (it is the background): it is inpainted."""
LOST_SHARE = 0.2
"""A tracked object whose foreground in its search window falls under this share of its
first size is lost for that frame: its last shape moves on at its last velocity."""
DISC = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
"""What a found object is grown by, so its soft edge goes with it."""


def mask_at(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """An edit's mask as booleans at `width`×`height` (nearest neighbour: no grey edge)."""
    mask = np.asarray(mask).astype(bool)
    if mask.shape != (height, width):
        resized = cv2.resize(
            mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
        )
        mask = resized.astype(bool)
    return mask


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """`cv2.boundingRect` of a uint8 mask: (x, y, width, height)."""
    return cast("tuple[int, int, int, int]", cv2.boundingRect(mask))


def _largest_channel(rgb: np.ndarray) -> np.ndarray:
    red, green, blue = cv2.split(rgb)
    return cv2.max(cv2.max(red, green), blue)


def median_background(frames: Iterable[np.ndarray], num_frames: int) -> np.ndarray:
    """The per-pixel median of MEDIAN_SAMPLES frames spread over the video: what stays still."""
    step = max(1, num_frames // MEDIAN_SAMPLES)
    kept = [f for i, f in enumerate(frames) if i % step == 0]
    if not kept:
        raise EngineError("The input video has no frames.")
    stack = np.stack(kept[:MEDIAN_SAMPLES])
    middle = len(stack) // 2
    return np.partition(stack, middle, axis=0)[middle]


def foreground(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Where `frame` differs from the background (specks opened away)."""
    moving = _largest_channel(cv2.absdiff(frame, background)) > FOREGROUND_LEVEL
    opened = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return opened.astype(bool)


def moves(first: np.ndarray, mask: np.ndarray, background: np.ndarray) -> bool:
    """Whether the masked object on the first frame stands out of the background."""
    return bool(foreground(first, background)[mask].mean() >= MOVING_SHARE)


class Tracker:
    """The object under the mask, followed from frame to frame: the foreground near where
    its last velocity puts it."""

    def __init__(self, mask: np.ndarray) -> None:
        self.shape = mask.copy()
        self.area = max(1, int(mask.sum()))
        self.velocity = np.zeros(2)
        self.centre = self._centre(mask)

    @staticmethod
    def _centre(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(mask)
        return np.array([xs.mean(), ys.mean()]) if len(xs) else np.zeros(2)

    def follow(self, moving: np.ndarray, first: bool) -> np.ndarray:
        """The object's pixels in this frame."""
        if first:
            near = cv2.dilate(self.shape.astype(np.uint8), DISC) > 0
            found = self.shape | (moving & near)
        else:
            guess = shifted(self.shape, self.velocity)
            if not guess.any():  # it has left the frame: nothing more to remove
                self.shape = guess
                return guess
            x, y, w, h = bounding_box(guess.astype(np.uint8))
            reach = max(8, (w + h) // 4)
            window = np.zeros_like(moving)
            window[max(0, y - reach) : y + h + reach, max(0, x - reach) : x + w + reach] = True
            found = moving & window
            if found.sum() < LOST_SHARE * self.area:
                found = guess
        centre = self._centre(found)
        if not first:
            self.velocity = 0.5 * self.velocity + 0.5 * (centre - self.centre)
        self.centre, self.shape = centre, found
        return found


def shifted(mask: np.ndarray, shift: np.ndarray) -> np.ndarray:
    matrix = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
    h, w = mask.shape
    return cv2.warpAffine(mask.astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST) > 0


def tracked(
    frames: Iterable[np.ndarray], mask: np.ndarray, background: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each frame with its hole: the tracked object grown by DISC, the pixels to take out."""
    tracker = Tracker(mask)
    for index, frame in enumerate(frames):
        found = tracker.follow(foreground(frame, background), first=index == 0)
        yield frame, cv2.dilate(found.astype(np.uint8), DISC) > 0
