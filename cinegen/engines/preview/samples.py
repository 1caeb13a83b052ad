"""What tells one sample of a request from another where footage fixes what the clip shows.

A text scene is drawn from the seed (scene.py), so each sample is a new scene. An image, a first
and last frame, or an input video fix what is seen; a sample then chooses how the camera moves
over it: which way and how far the camera drifts over the image (`varied_velocity`), the detour
it takes between the first frame and the last (`Detour`), and the push-in it takes on after an
extension's input (`Drift`). Vertex gives each sample its own seed even when the request sets
one (the worker derives them), so these come from the sample's seed (`phase`); none changes
frame 0, the last frame of first + last, or an extension's input frames. A static camera over
a still image stays still: only its weather, drawn from the seed too, differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cinegen.engines.preview.camera import Velocity

SAMPLE_STRIDE = 0x9E3779B1
"""How far apart the seeds of one request's samples are (jobs/worker.py's `sample_seed`)."""
PHASE_MULTIPLIER = 0x9DE3EAF5
"""Turns a seed into a `phase`. Chosen (by search over odd 32-bit numbers) so that both
runs that matter are spread round the circle as evenly as the golden ratio's multiples:
seeds one apart (someone trying 1, 2, 3) step by 0.617 of a turn, and one request's samples
(seeds `SAMPLE_STRIDE` apart) by 0.583; the first n points of either (n ≤ 10) are at least
0.49 / n of a turn apart."""


def phase(seed: int) -> float:
    """Where a seed sits on a circle, in [0, 1): the sample's camera choices follow from it.

    Samples of one request, or seeds next to each other, never sit close (`PHASE_MULTIPLIER`),
    as two random draws may: their clips differ as much as the range of choices allows."""
    return (seed % 2**32) * PHASE_MULTIPLIER % 2**32 / 2**32


SPEED_SPREAD = 0.2
"""The prompt's move, up to this share faster or slower: its direction stays the prompt's."""
ACROSS_SHARE = 0.5
"""The most a drift across the move may be, as a share of the move's size (either way):
"pan right" still pans right."""
DEFAULT_DRIFT = 0.02
"""Frame fractions per second: the size a move is taken as, for the drift, if it is smaller."""


def varied_velocity(base: Velocity, seed: int) -> Velocity:
    """The image's camera velocity for this sample: the prompt's move at its own speed, plus
    a drift across it (up or down across a lateral move, sideways across a vertical one, any
    way across a push in), both set by where the seed sits on the circle (`phase`)."""
    lateral = abs(base.pan) + abs(base.truck)
    vertical = abs(base.tilt) + abs(base.rise)
    depth = 0.5 * (abs(base.dolly) + abs(base.zoom))
    if max(lateral, vertical, depth) == 0.0:
        return base  # a static camera over a still image stays still
    angle = 2.0 * math.pi * phase(seed)
    speed = 1.0 + SPEED_SPREAD * math.cos(angle)
    across = ACROSS_SHARE * max(lateral, vertical, depth, DEFAULT_DRIFT)
    if lateral >= max(vertical, depth):
        truck, rise = 0.0, across * math.sin(angle)
    elif vertical >= depth:
        truck, rise = across * math.sin(angle), 0.0
    else:
        truck, rise = across * math.cos(angle), across * math.sin(angle)
    return Velocity(
        pan=base.pan * speed,
        tilt=base.tilt * speed,
        zoom=base.zoom * speed,
        dolly=base.dolly * speed,
        truck=base.truck * speed + truck,
        rise=base.rise * speed + rise,
        shake=base.shake,
    )


DETOUR_ZOOM = (0.03, 0.06)
"""How far the camera pushes in at the middle of first + last (the view grows by this share): enough to tell
samples apart, little enough that the pair's own motion stays what the clip is about."""
DETOUR_REACH = 0.9
"""How far up or down the pushed-in view moves at most, as a share of what the push-in leaves
room for: the view never looks past the images' edges. Up or down, not sideways: sideways it
would add to the pair's own motion, which is mostly sideways, and move a subject off the
halfway point it is at in the middle of the clip."""


@dataclass(frozen=True)
class Detour:
    """A camera detour between the first frame and the last: at time t the view is pushed in
    by `weight(t) * zoom` and moved by `weight(t) * offset` (frame fractions; a sample's
    moves up or down), and weight is 0 at both ends, so frame 0 and the last frame are the
    given images.

    The frame the flows make at time t, f(q0), is shown at q = q0 + `shift(q0)`: each image's
    pixels are splatted there (interpolate.py), so occlusion, trust and motion edges move with
    them."""

    zoom: float
    offset: tuple[float, float]

    @classmethod
    def for_seed(cls, seed: int) -> Detour:
        """Push-in and rise set by where the seed sits on the circle (`phase`): samples of
        one request push in by different amounts, or rise or fall by different amounts."""
        angle = 2.0 * math.pi * phase(seed)
        low, high = DETOUR_ZOOM
        zoom = (low + high) / 2 + (high - low) / 2 * math.cos(angle)
        reach = DETOUR_REACH * zoom / 2  # a share of the frame's growth on each side
        return cls(zoom, (0.0, reach * math.sin(angle)))

    @staticmethod
    def weight(t: float) -> float:
        """0 at both ends and flat there (as the eased timing is), 1 at the middle."""
        return math.sin(math.pi * t) ** 2

    def shift(
        self, xs: np.ndarray, ys: np.ndarray, t: float, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """How far the point (xs, ys) of the frame at time t moves, in the pixels of a frame
        of `size` (width, height)."""
        w = self.weight(t)
        width, height = size
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        return (
            w * (self.zoom * (xs - cx) + self.offset[0] * width),
            w * (self.zoom * (ys - cy) + self.offset[1] * height),
        )

    def unshifted(
        self, xs: np.ndarray, ys: np.ndarray, t: float, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The point q0 that `shift` moves to (xs, ys): the inverse of q0 + shift(q0)."""
        w = self.weight(t)
        width, height = size
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        grow = 1.0 + w * self.zoom
        return (
            (xs + w * (self.zoom * cx - self.offset[0] * width)) / grow,
            (ys + w * (self.zoom * cy - self.offset[1] * height)) / grow,
        )

    def fastest(self, size: tuple[int, int]) -> float:
        """The most a pixel of a frame of `size` moves per unit of t (weight' ≤ π)."""
        width, height = size
        x = self.zoom * width / 2 + abs(self.offset[0]) * width
        y = self.zoom * height / 2 + abs(self.offset[1]) * height
        return math.pi * math.hypot(x, y)


DRIFT_RATE = (0.01, 0.03)
"""Log-scale push-in per second the extension's camera takes on after the input."""
DRIFT_RAMP_SECONDS = 3.0
"""The push-in grows in over this long from nothing at the seam, so the first second still
moves as the input did (the push-in adds under 0.05 % of scale per frame there)."""


@dataclass(frozen=True)
class Drift:
    """A push-in about the centre that the extension's camera takes on after the input,
    grown in from nothing at the seam. Only in: it shows nothing the camera's own motion
    would not. (A drift off centre too would move the continued subjects off the paths the
    input set them on.)"""

    rate: float  # log-scale zoom per second at full speed

    @classmethod
    def for_seed(cls, seed: int) -> Drift:
        """A rate set by where the seed sits on the circle (`phase`)."""
        low, high = DRIFT_RATE
        return cls(low + (high - low) * phase(seed))

    def travelled(self, frames_on: int, fps: int) -> float:
        """Seconds of full-speed push-in after `frames_on` new frames (smooth from rest)."""
        seconds = frames_on / fps
        if seconds >= DRIFT_RAMP_SECONDS:
            return seconds - DRIFT_RAMP_SECONDS / 2
        return seconds * seconds / (2 * DRIFT_RAMP_SECONDS)

    def matrix(self, frames_on: int, fps: int, size: tuple[int, int]) -> np.ndarray:
        """3×3: frame pixels without the push-in → with it, `frames_on` new frames on."""
        grow = math.exp(self.rate * self.travelled(frames_on, fps))
        cx, cy = (size[0] - 1) / 2.0, (size[1] - 1) / 2.0
        return np.array([[grow, 0.0, cx - grow * cx], [0.0, grow, cy - grow * cy], [0, 0, 1.0]])
