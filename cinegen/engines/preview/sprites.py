"""Small moving things in the world (birds, cars, boats, people), drawn fresh every frame.

A sprite lives on a depth layer: its position is in layer pixels, so it moves with the camera
like the ground it stands on, plus its own velocity.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from cinegen.engines.preview.layers import HORIZON

DEFAULT_SUBJECTS = {
    "mountains": ("birds",),
    "forest": ("birds",),
    "ocean": ("boats", "birds"),
    "city": ("cars", "people"),
    "desert": ("birds",),
    "space": (),
}


@dataclass(frozen=True)
class Sprite:
    kind: str
    x: float  # layer pixels at t = 0
    y: float
    vx: float  # layer pixels per second
    size: float  # pixels
    nearness: float
    phase: float
    colour: tuple[int, int, int]


def make_sprites(
    subjects: tuple[str, ...],
    view: tuple[int, int],
    span: tuple[float, float],
    rng: np.random.Generator,
    night: bool,
) -> list[Sprite]:
    """A handful of each subject, spread over the horizontal `span` the camera will see."""
    vw, vh = view
    sprites: list[Sprite] = []
    x_lo, x_hi = span
    for kind in subjects:
        if kind == "birds":
            for _ in range(5):
                sprites.append(
                    Sprite(
                        kind,
                        rng.uniform(x_lo, x_hi),
                        rng.uniform(0.12, 0.4) * vh,
                        rng.choice([-1, 1]) * rng.uniform(0.04, 0.08) * vw,
                        rng.uniform(0.012, 0.02) * vh,
                        0.4,
                        rng.uniform(0, 6.3),
                        (20, 20, 25) if not night else (10, 10, 14),
                    )
                )
        elif kind == "cars":
            for lane, direction in ((0.9, 1), (0.96, -1)):
                for _ in range(2):
                    # any hue, but clear of the dark asphalt: a navy car on it is hard to
                    # see, for a viewer and for an extension's search for what moves
                    hue, saturation, value = rng.uniform((0.0, 0.45, 0.6), (1.0, 0.9, 0.95))
                    red, green, blue = (
                        round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value)
                    )
                    sprites.append(
                        Sprite(
                            kind,
                            rng.uniform(x_lo, x_hi),
                            lane * vh,
                            direction * rng.uniform(0.12, 0.2) * vw,
                            0.05 * vh,
                            1.0,
                            0.0,
                            (red, green, blue),
                        )
                    )
        elif kind == "boats":
            for _ in range(2):
                sprites.append(
                    Sprite(
                        kind,
                        rng.uniform(x_lo, x_hi),
                        (HORIZON + rng.uniform(0.04, 0.14)) * vh,
                        rng.choice([-1, 1]) * rng.uniform(0.01, 0.025) * vw,
                        rng.uniform(0.03, 0.05) * vh,
                        0.5,
                        rng.uniform(0, 6.3),
                        (240, 240, 235),
                    )
                )
        elif kind == "people":
            for _ in range(3):
                sprites.append(
                    Sprite(
                        kind,
                        rng.uniform(x_lo, x_hi),
                        0.87 * vh,
                        rng.choice([-1, 1]) * rng.uniform(0.02, 0.04) * vw,
                        0.09 * vh,
                        1.0,
                        rng.uniform(0, 6.3),
                        (25, 25, 30),
                    )
                )
    return sprites


def draw_sprites(
    frame: np.ndarray,
    sprites: list[Sprite],
    seconds: float,
    to_screen: dict[float, tuple[float, float, float]],
    wrap: tuple[float, float],
    night: bool,
) -> None:
    """Draw every sprite at time `seconds`; `to_screen[nearness]` = (scale, ox, oy).

    Sprites leaving the horizontal range `wrap` (layer pixels) come back from the other side.
    """
    x_lo, x_hi = wrap
    for sprite in sprites:
        scale, ox, oy = to_screen[sprite.nearness]
        x_layer = x_lo + (sprite.x + sprite.vx * seconds - x_lo) % max(x_hi - x_lo, 1.0)
        sx = (x_layer - ox) * scale
        sy = (sprite.y - oy) * scale
        _DRAW[sprite.kind](frame, sprite, sx, sy, sprite.size * scale, seconds, night)


def _bird(
    frame: np.ndarray, s: Sprite, x: float, y: float, size: float, t: float, night: bool
) -> None:
    flap = np.sin(t * 9.0 + s.phase) * size * 0.5
    pts = np.array([[x - size, y - flap], [x, y + size * 0.2], [x + size, y - flap]], np.int32)
    cv2.polylines(frame, [pts], False, s.colour, max(1, int(size * 0.18)), cv2.LINE_AA)


def _car(
    frame: np.ndarray, s: Sprite, x: float, y: float, size: float, t: float, night: bool
) -> None:
    w, h = size * 2.2, size * 0.7
    cv2.rectangle(frame, (int(x - w / 2), int(y - h)), (int(x + w / 2), int(y)), s.colour, -1)
    cv2.rectangle(
        frame, (int(x - w / 4), int(y - h * 1.6)), (int(x + w / 4), int(y - h)), s.colour, -1
    )
    front = x + (w / 2 if s.vx > 0 else -w / 2)
    light = (255, 240, 190) if night else (230, 230, 210)
    cv2.circle(frame, (int(front), int(y - h * 0.5)), max(1, int(size * 0.15)), light, -1)


def _boat(
    frame: np.ndarray, s: Sprite, x: float, y: float, size: float, t: float, night: bool
) -> None:
    bob = np.sin(t * 2.0 + s.phase) * size * 0.08
    hull = np.array(
        [
            [x - size, y + bob],
            [x + size, y + bob],
            [x + size * 0.7, y + size * 0.3 + bob],
            [x - size * 0.7, y + size * 0.3 + bob],
        ],
        np.int32,
    )
    sail = np.array([[x, y - size * 1.4 + bob], [x, y + bob], [x + size * 0.8, y + bob]], np.int32)
    cv2.fillConvexPoly(frame, hull, (60, 45, 40))
    cv2.fillConvexPoly(frame, sail, s.colour if not night else (150, 150, 160))


def _person(
    frame: np.ndarray, s: Sprite, x: float, y: float, size: float, t: float, night: bool
) -> None:
    swing = np.sin(t * 6.0 + s.phase) * size * 0.15
    head = (int(x), int(y - size * 0.9))
    thick = max(1, int(size * 0.12))
    cv2.circle(frame, head, max(1, int(size * 0.1)), s.colour, -1)
    cv2.line(frame, (int(x), int(y - size * 0.8)), (int(x), int(y - size * 0.4)), s.colour, thick)
    cv2.line(frame, (int(x), int(y - size * 0.4)), (int(x + swing), int(y)), s.colour, thick)
    cv2.line(frame, (int(x), int(y - size * 0.4)), (int(x - swing), int(y)), s.colour, thick)


_DRAW = {"birds": _bird, "cars": _car, "boats": _boat, "people": _person}
