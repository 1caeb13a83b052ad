"""Vertex's `cameraControl` as the camera's move over the first frame (parallax.py).

Each value is one move of the camera model in camera.py, taken as named, not re-read as a
prompt's move is (`parallax.image_velocity` turns a prompt's pan mostly into a truck):

- `pan_*`, `tilt_*` turn the camera: every depth, the sky included, shifts alike;
- `truck_*`, `pedestal_*` move it sideways or up: near parts shift more, the sky stays;
- `push_in`, `pull_out` move it forward or back, the lens narrowing or widening a little as
  it goes: the whole view grows or shrinks about the centre, near parts more;
- `fixed` holds it still (only the prompt's weather moves).

Signs follow the camera: `pan_right` turns it right, so the view moves left in the frame.
A sample's seed may change the speed a little (`SPEED_SPREAD`), never the move's kind or its
direction.

A prompt's move over an image zooms in as it goes so that it never looks past the image's
edges; a control does not (but for a push in, which never needs to): that zoom would add a
push in the request did not ask for. Where the move looks past an edge, the image is mirrored
there, as a prompt's pull out already is (`FITTED`).
"""

from __future__ import annotations

import math

from cinegen.engines.preview.camera import (
    DOLLY_RATE,
    PAN_RATE,
    TILT_RATE,
    TRUCK_RATE,
    ZOOM_RATE,
    Velocity,
)
from cinegen.engines.preview.samples import phase

RISE_RATE = TILT_RATE
"""Pedestal speed, a fraction of the frame height per second (as a tilt's)."""
PUSH_ZOOM = ZOOM_RATE * 0.5
"""The lens's share of a push in or pull out (log-scale per second): the sky grows too."""
SPEED_SPREAD = 0.1
"""A sample's speed: the named move's, up to this share faster or slower."""

CONTROLS: dict[str, Velocity] = {
    "fixed": Velocity(),
    "pan_left": Velocity(pan=-PAN_RATE),
    "pan_right": Velocity(pan=PAN_RATE),
    "tilt_up": Velocity(tilt=TILT_RATE),
    "tilt_down": Velocity(tilt=-TILT_RATE),
    "truck_left": Velocity(truck=-TRUCK_RATE),
    "truck_right": Velocity(truck=TRUCK_RATE),
    "pedestal_up": Velocity(rise=RISE_RATE),
    "pedestal_down": Velocity(rise=-RISE_RATE),
    "push_in": Velocity(dolly=DOLLY_RATE, zoom=PUSH_ZOOM),
    "pull_out": Velocity(dolly=-DOLLY_RATE, zoom=-PUSH_ZOOM),
}


FITTED = frozenset({"fixed", "push_in"})
"""The controls whose frames are zoomed to keep inside the image (only a push in needs it)."""


def sample_speed(seed: int | None) -> float:
    """The speed multiplier of the sample with `seed` (1.0 without one)."""
    if seed is None:
        return 1.0
    return 1.0 + SPEED_SPREAD * math.cos(2.0 * math.pi * phase(seed))


def control_velocity(control: str, seconds: float, max_travel: float, seed: int | None) -> Velocity:
    """The named move's velocity, slowed so that it travels at most `max_travel` (a fraction
    of the frame; a push or pull counts half its log-scale) over `seconds` (as a prompt's move
    is, parallax.py), then at the sample's own speed."""
    base = CONTROLS[control]
    travel = max(abs(base.pan) + abs(base.truck), abs(base.tilt) + abs(base.rise))
    travel = max(travel, (abs(base.dolly) + abs(base.zoom)) * 0.5) * seconds
    k = min(1.0, max_travel / travel) if travel > 0 else 1.0
    k *= sample_speed(seed)
    return Velocity(
        pan=base.pan * k,
        tilt=base.tilt * k,
        zoom=base.zoom * k,
        dolly=base.dolly * k,
        truck=base.truck * k,
        rise=base.rise * k,
    )
