"""Colours and light from the time of day, the setting, the weather and the mood words."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cinegen.engines.prompt import ScenePlan

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Palette:
    sky_top: RGB
    sky_horizon: RGB
    light: RGB  # sun or moon disc
    far: RGB  # distant ridges (before haze)
    mid: RGB
    near: RGB
    accent: RGB  # windows, lamps, sparks
    haze: RGB  # what distance fades to
    brightness: float  # multiplies the lit surfaces
    sun_height: float  # fraction of the frame height above the horizon; < 0 hides it
    night: bool


@dataclass(frozen=True)
class TimeOfDay:
    top: RGB  # sky at the zenith
    horizon: RGB  # sky at the horizon
    light: RGB  # sun or moon
    brightness: float
    sun_height: float
    night: bool


_TIMES: dict[str, TimeOfDay] = {
    "day": TimeOfDay((60, 120, 215), (175, 205, 235), (255, 250, 225), 1.0, 0.35, False),
    "sunset": TimeOfDay((55, 45, 115), (255, 135, 60), (255, 205, 120), 0.72, 0.06, False),
    "sunrise": TimeOfDay((95, 125, 200), (255, 175, 135), (255, 230, 180), 0.82, 0.1, False),
    "night": TimeOfDay((4, 6, 22), (22, 32, 68), (225, 232, 255), 0.32, 0.3, True),
}

_GROUND: dict[str, tuple[RGB, RGB, RGB]] = {  # far, mid, near
    "mountains": ((95, 110, 135), (70, 105, 70), (55, 90, 45)),
    "forest": ((80, 105, 95), (40, 85, 45), (30, 70, 30)),
    "desert": ((190, 150, 120), (215, 175, 120), (200, 160, 105)),
    "city": ((85, 90, 110), (70, 75, 90), (60, 60, 66)),
    "ocean": ((90, 110, 130), (30, 85, 135), (215, 195, 150)),
    "space": ((60, 40, 90), (90, 70, 120), (120, 110, 130)),
}

# Multipliers per mood tone (R, G, B), and an optional saturation change.
_TONES: dict[str, tuple[RGB, float]] = {
    "warm": ((1.15, 1.0, 0.8), 1.05),
    "cool": ((0.8, 0.95, 1.2), 1.0),
    "green": ((0.85, 1.15, 0.85), 1.0),
    "purple": ((1.1, 0.8, 1.2), 1.1),
    "mono": ((1.0, 1.0, 1.0), 0.0),
    "dark": ((0.7, 0.7, 0.75), 0.8),
    "bright": ((1.1, 1.1, 1.1), 1.3),
}


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def _scale(c: RGB, k: float) -> RGB:
    return (c[0] * k, c[1] * k, c[2] * k)


def make_palette(plan: ScenePlan) -> Palette:
    """The scene's colours before mood grading (grading applies to whole images)."""
    time = _TIMES.get(plan.time_of_day, _TIMES["day"])
    top, horizon = time.top, time.horizon
    far, mid, near = _GROUND.get(plan.setting, _GROUND["mountains"])
    brightness = time.brightness
    overcast = plan.weather & {"rain", "snow", "lightning", "clouds", "fog"}
    if overcast:
        grey = (150.0, 155.0, 165.0) if not time.night else (30.0, 32.0, 40.0)
        amount = 0.65 if plan.weather & {"rain", "snow", "lightning"} else 0.4
        top = _mix(top, _scale(grey, 0.7), amount)
        horizon = _mix(horizon, grey, amount)
        brightness *= 0.85
    if "snow" in plan.weather:
        near = _mix(near, (235, 238, 245), 0.8)
        mid = _mix(mid, (215, 220, 232), 0.6)
    warm_lights = time.night or plan.time_of_day == "sunset"
    return Palette(
        sky_top=top,
        sky_horizon=horizon,
        light=time.light,
        far=far,
        mid=mid,
        near=near,
        accent=(255, 200, 90) if warm_lights else (255, 235, 160),
        haze=_mix(horizon, (200, 200, 205), 0.3),
        brightness=brightness,
        sun_height=-1.0 if overcast else time.sun_height,
        night=time.night,
    )


def grade(image: np.ndarray, tones: tuple[str, ...]) -> np.ndarray:
    """Apply the mood tones to a float32 RGB image in [0, 255] (in place where possible)."""
    for tone in tones:
        gains, saturation = _TONES[tone]
        image *= np.asarray(gains, np.float32)
        if saturation != 1.0:
            # Not `image @ weights`: BLAS would wake its threads, which then spin for a while
            # on the core the encoder needs.
            luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            image -= luma[..., None]
            image *= saturation
            image += luma[..., None]
    np.clip(image, 0, 255, out=image)
    return image
