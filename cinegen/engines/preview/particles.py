"""Weather drawn in screen space over the finished frame: rain, snow, sparks, lightning.

Every particle's position is a closed-form function of time (start point + velocity, wrapped
around the frame), so frame i never depends on frame i-1 and a render is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np


@dataclass(frozen=True)
class Field:
    kind: str  # "rain" | "snow" | "sparks"
    x: np.ndarray  # start positions, fractions of the frame
    y: np.ndarray
    vx: np.ndarray  # fractions of the frame per second
    vy: np.ndarray
    size: np.ndarray  # fractions of the frame height
    phase: np.ndarray
    colour: tuple[int, int, int]


def make_fields(
    weather: frozenset[str], rng: np.random.Generator, night: bool, wind: float, height: int
) -> list[Field]:
    """One particle field per weather word that has particles.

    Counts grow with the frame's height, not its area: particles are a few pixels wide
    whatever the resolution, so a small frame with a 720p count would be all rain.
    """
    density = min(1.0, max(0.15, height / 720.0))
    fields = []
    if "rain" in weather:
        n = int(180 * density)
        fields.append(
            Field(
                "rain",
                rng.random(n),
                rng.random(n),
                np.full(n, 0.12 + wind),
                rng.uniform(1.4, 2.0, n),
                rng.uniform(0.025, 0.05, n),
                rng.random(n),
                (150, 160, 180) if night else (205, 212, 225),
            )
        )
    if "snow" in weather:
        n = int(220 * density)
        fields.append(
            Field(
                "snow",
                rng.random(n),
                rng.random(n),
                rng.normal(wind, 0.02, n),
                rng.uniform(0.06, 0.16, n),
                rng.uniform(0.003, 0.009, n),
                rng.uniform(0, 6.3, n),
                (245, 246, 250),
            )
        )
    if "sparks" in weather:
        n = max(12, int(90 * density))
        fields.append(
            Field(
                "sparks",
                rng.random(n),
                rng.random(n),
                rng.normal(0, 0.03, n),
                -rng.uniform(0.08, 0.2, n),
                rng.uniform(0.002, 0.005, n),
                rng.uniform(0, 6.3, n),
                (255, 190, 80),
            )
        )
    return fields


def draw_fields(frame: np.ndarray, fields: list[Field], seconds: float, share: float = 1.0) -> None:
    """Draw every field onto `frame` (uint8 RGB, modified in place).

    `share` < 1 draws only that fraction of each field's particles (a weather fading in).
    """
    height, width = frame.shape[:2]
    for whole in fields:
        f = whole if share >= 1.0 else _subset(whole, int(len(whole.x) * max(share, 0.0)))
        if len(f.x) == 0:
            continue
        x = ((f.x + f.vx * seconds) % 1.0) * width
        y = ((f.y + f.vy * seconds) % 1.0) * height
        if f.kind == "rain":
            length = f.size * height
            dx = f.vx / f.vy * length
            lines = np.stack([x, y, x - dx, y - length], 1).round().astype(np.int32)
            # cv2 takes an N × 2 × 2 array as N lines; its stubs want them as a Sequence.
            polylines = cast("Sequence[np.ndarray]", lines.reshape(-1, 2, 2))
            cv2.polylines(frame, polylines, False, f.colour, max(1, height // 400), cv2.LINE_8)
        else:
            wobble = np.sin(seconds * 2.0 + f.phase) * 0.01 * width if f.kind == "snow" else 0
            radius = np.maximum(1, (f.size * height).astype(np.int32))
            flicker = 0.8 + 0.2 * np.sin(seconds * 13.0 + f.phase * 5) if f.kind == "sparks" else 1
            centres = np.stack([x + wobble, y], 1).round().astype(np.int32)
            for (cx, cy), r, k in zip(
                centres, radius, np.broadcast_to(flicker, radius.shape), strict=True
            ):
                colour = tuple(int(c * k) for c in f.colour)
                cv2.circle(frame, (int(cx), int(cy)), int(r), colour, -1, cv2.LINE_8)


def _subset(f: Field, count: int) -> Field:
    return Field(
        f.kind,
        f.x[:count],
        f.y[:count],
        f.vx[:count],
        f.vy[:count],
        f.size[:count],
        f.phase[:count],
        f.colour,
    )


def lightning_flash(frame_index: int, fps: int, seed: int) -> float:
    """Brightness boost for a lightning flash at this frame (0 when there is none)."""
    rng = np.random.default_rng([seed, 99])
    strikes = rng.uniform(0.8, 6.0, 3) * fps  # strike times, frames
    age = frame_index - strikes
    visible = (age >= 0) & (age < 4)
    if not visible.any():
        return 0.0
    return float(np.max(np.where(visible, 0.8 * np.exp(-age / 1.5), 0.0)))


def flash(frame: np.ndarray, amount: float) -> None:
    """Brighten the whole frame toward white (a lightning flash)."""
    if amount > 0:
        cv2.addWeighted(frame, 1.0 - amount * 0.5, frame, 0.0, 255 * amount * 0.5, dst=frame)
