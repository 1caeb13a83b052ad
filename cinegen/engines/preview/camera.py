"""Camera paths: where the camera is at each frame, and how that moves each depth layer.

A camera pose has five parameters, each a fraction of the frame size at the current time:
`pan`/`tilt` turn the camera (every depth moves alike), `truck`/`rise` slide it sideways or
up (near layers move more: parallax), `zoom` changes the focal length (every depth scales
alike) and `dolly` moves it forward (near layers grow more). The signs follow the camera:
`pan > 0` turns it right, so the scene moves left in the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Rates per second at speed 1.0: a fraction of the frame width (pan, truck), of the height
# (tilt, rise), or a log-scale change (zoom, dolly).
PAN_RATE = 0.10
TILT_RATE = 0.08
ZOOM_RATE = 0.05
DOLLY_RATE = 0.06
TRUCK_RATE = 0.10
EASE_SECONDS = 0.4


@dataclass(frozen=True)
class Velocity:
    """Constant camera velocity, in units per second (see the module docstring)."""

    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    dolly: float = 0.0
    truck: float = 0.0
    rise: float = 0.0
    shake: float = 0.0  # handheld jitter amplitude, fraction of the frame


@dataclass(frozen=True)
class Pose:
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    dolly: float = 0.0
    truck: float = 0.0
    rise: float = 0.0


MOVES: dict[str, Velocity] = {
    "static": Velocity(),
    "default": Velocity(zoom=ZOOM_RATE * 0.6, pan=PAN_RATE * 0.15),
    "pan_left": Velocity(pan=-PAN_RATE),
    "pan_right": Velocity(pan=PAN_RATE),
    "tilt_up": Velocity(tilt=TILT_RATE),
    "tilt_down": Velocity(tilt=-TILT_RATE),
    "zoom_in": Velocity(zoom=ZOOM_RATE),
    "zoom_out": Velocity(zoom=-ZOOM_RATE),
    "dolly_in": Velocity(dolly=DOLLY_RATE),
    "dolly_out": Velocity(dolly=-DOLLY_RATE),
    "truck_left": Velocity(truck=-TRUCK_RATE),
    "truck_right": Velocity(truck=TRUCK_RATE),
    "drone": Velocity(dolly=DOLLY_RATE * 0.7, rise=0.02, tilt=-0.01),
    "orbit": Velocity(truck=TRUCK_RATE, pan=-PAN_RATE * 0.5),
    "handheld": Velocity(shake=0.006),
}


def velocity_for(camera: str, speed: float) -> Velocity:
    """The velocity of a named move (see prompt.CAMERA) at a speed multiplier."""
    base = MOVES.get(camera, MOVES["default"])
    return Velocity(
        pan=base.pan * speed,
        tilt=base.tilt * speed,
        zoom=base.zoom * speed,
        dolly=base.dolly * speed,
        truck=base.truck * speed,
        rise=base.rise * speed,
        shake=base.shake,
    )


def eased_time(seconds: float) -> float:
    """Travelled time under a gentle start: quadratic for EASE_SECONDS, then linear."""
    if seconds >= EASE_SECONDS:
        return seconds - EASE_SECONDS / 2
    return seconds * seconds / (2 * EASE_SECONDS)


def pose_at(velocity: Velocity, seconds: float, jitter: tuple[float, float] = (0, 0)) -> Pose:
    """The pose after `seconds` of motion (plus handheld jitter in pan/tilt)."""
    t = eased_time(seconds)
    return Pose(
        pan=velocity.pan * t + jitter[0],
        tilt=velocity.tilt * t + jitter[1],
        zoom=velocity.zoom * t,
        dolly=velocity.dolly * t,
        truck=velocity.truck * t,
        rise=velocity.rise * t,
    )


def layer_matrix(pose: Pose, nearness: float, width: int, height: int) -> np.ndarray:
    """2×3 affine from frame pixels to layer pixels (for `cv2.warpAffine` with WARP_INVERSE_MAP).

    `nearness` is 0 for the sky (infinitely far) and 1 for the reference plane; nearer layers
    get more of the truck/rise shift and more of the dolly growth. Layer pixel (x, y) at pose 0
    is frame pixel (x, y).
    """
    scale = float(np.exp(pose.zoom)) / max(1e-3, 1.0 - min(0.75, pose.dolly * nearness))
    shift_x = (pose.pan + pose.truck * nearness) * width
    shift_y = -(pose.tilt + pose.rise * nearness) * height
    cx, cy = width / 2.0, height / 2.0
    inv = 1.0 / scale
    return np.array(
        [[inv, 0.0, cx + shift_x - cx * inv], [0.0, inv, cy + shift_y - cy * inv]],
        dtype=np.float64,
    )


def handheld_jitter(shake: float, num_frames: int, fps: int, seed: int) -> np.ndarray:
    """Smooth random (pan, tilt) offsets per frame: low-pass filtered noise, deterministic."""
    if shake <= 0:
        return np.zeros((num_frames, 2))
    rng = np.random.default_rng([seed, 7])
    knots = max(2, int(num_frames / fps * 3) + 2)
    coarse = rng.standard_normal((knots, 2)) * shake
    positions = np.linspace(0, knots - 1, num_frames)
    jitter = np.stack([np.interp(positions, np.arange(knots), coarse[:, i]) for i in (0, 1)], 1)
    return jitter - jitter[0]
