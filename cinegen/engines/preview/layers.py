"""Depth layers of a procedural landscape, painted once, then moved by the camera every frame.

Each layer is an RGBA canvas in "layer pixels" (frame pixels at the first pose) covering all
the camera will see of it, with a `nearness` that sets its parallax (0 = sky, 1 = foreground).
Painting happens once per render; per frame there is only a warp and a blend per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cinegen.engines.preview.noise import fractal_noise, ridge_line, value_noise
from cinegen.engines.preview.palette import RGB, Palette, grade
from cinegen.engines.prompt import ScenePlan

HORIZON = 0.58  # fraction of the view height where sky meets land at the first pose


@dataclass(frozen=True)
class Region:
    """The part of layer space a canvas covers: canvas pixel (0, 0) is layer pixel (x0, y0)."""

    x0: int
    y0: int
    width: int
    height: int

    def ys(self) -> np.ndarray:
        return np.arange(self.y0, self.y0 + self.height, dtype=np.float32)

    def xs(self) -> np.ndarray:
        return np.arange(self.x0, self.x0 + self.width, dtype=np.float32)


@dataclass
class Layer:
    """A painted layer, kept for fast compositing: RGBA, and the rows where it is solid.

    Four channels, not RGB plus a separate alpha: OpenCV's bilinear warps have a vector path
    for four channels and none for three, so one RGBA warp costs much less than an RGB warp
    plus an alpha warp.
    """

    rgba: np.ndarray  # uint8 H×W×4 (alpha 255 = opaque)
    region: Region
    nearness: float
    name: str
    top: int  # first canvas row with any coverage
    solid: int  # first canvas row from which every row below is fully opaque
    drift: float = 0.0  # its own horizontal motion, layer pixels per second (clouds)

    @classmethod
    def from_rgba(
        cls, rgba: np.ndarray, region: Region, nearness: float, name: str, drift: float = 0.0
    ) -> Layer:
        alpha = rgba[..., 3]
        covered = np.flatnonzero(alpha.max(axis=1) > 0)
        top = int(covered[0]) if len(covered) else alpha.shape[0]
        not_solid = np.flatnonzero(alpha.min(axis=1) < 255)
        solid = int(not_solid[-1]) + 1 if len(not_solid) else 0
        return cls(np.ascontiguousarray(rgba), region, nearness, name, top, solid, drift)


def _fill(colour: RGB, height: int, width: int) -> np.ndarray:
    image = np.empty((height, width, 3), np.float32)
    image[...] = colour
    return image


def _vertical_mix(top: RGB, bottom: RGB, t: np.ndarray, width: int) -> np.ndarray:
    """Rows coloured from `top` (t=0) to `bottom` (t=1), broadcast across `width`."""
    a = np.asarray(top, np.float32)
    b = np.asarray(bottom, np.float32)
    rows = a + (b - a) * t[:, None]
    return np.repeat(rows[:, None, :], width, axis=1)


def _to_rgba(rgb: np.ndarray, alpha: np.ndarray, tones: tuple[str, ...]) -> np.ndarray:
    rgb = grade(rgb, tones)
    out = np.empty((*rgb.shape[:2], 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = np.clip(alpha * 255.0, 0, 255)
    return out


def _edge_alpha(surface_y: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Alpha 1 below a per-column surface line, with a one-pixel soft edge."""
    return np.clip(ys[:, None] - surface_y[None, :] + 0.5, 0.0, 1.0)


# --------------------------------------------------------------------------- the sky


def paint_sky(
    plan: ScenePlan, pal: Palette, region: Region, view: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Gradient, sun or moon with glow, stars: always opaque (clouds are a layer of their own,
    so they can drift)."""
    vw, vh = view
    ys, xs = region.ys(), region.xs()
    horizon = HORIZON * vh
    if plan.setting == "space":
        rgb = _fill((3, 3, 10), region.height, region.width)
        _paint_nebula(rgb, region, vh, rng)
    else:
        t = np.clip(ys / horizon, 0.0, 1.0) ** 0.8
        rgb = _vertical_mix(pal.sky_top, pal.sky_horizon, t, region.width)
    if pal.night or plan.setting == "space":
        _paint_stars(rgb, region, vh, rng)
    if pal.sun_height > 0 or plan.setting == "space":
        _paint_sun(rgb, pal, region, xs, ys, view)
    if "fog" in plan.weather:
        rgb += (np.asarray(pal.haze, np.float32) - rgb) * 0.45
    return _to_rgba(rgb, np.ones(rgb.shape[:2], np.float32), plan.tones)


def has_clouds(plan: ScenePlan, pal: Palette) -> bool:
    """Clouds in daylight skies and whenever the weather brings them."""
    return bool(
        "clouds" in plan.weather
        or plan.weather & {"rain", "snow", "lightning"}
        or (plan.setting != "space" and not pal.night)
    )


def _paint_sun(
    rgb: np.ndarray,
    pal: Palette,
    region: Region,
    xs: np.ndarray,
    ys: np.ndarray,
    view: tuple[int, int],
) -> None:
    vw, vh = view
    cx = 0.68 * vw
    cy = HORIZON * vh - max(pal.sun_height, 0.25) * vh
    radius = 0.045 * vh if not pal.night else 0.035 * vh
    d = np.sqrt((xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2)
    disc = np.clip(radius - d + 1.0, 0.0, 1.0)
    glow = np.exp(-d / (radius * (5.0 if not pal.night else 2.5))) * (
        0.55 if not pal.night else 0.25
    )
    light = np.asarray(pal.light, np.float32)
    rgb += (light - rgb) * np.clip(glow + disc, 0.0, 1.0)[..., None]


def _paint_stars(rgb: np.ndarray, region: Region, vh: int, rng: np.random.Generator) -> None:
    count = int(region.width * region.height / 900) + 1
    x = rng.integers(0, region.width, count)
    y = rng.integers(0, region.height, count)
    keep = (y + region.y0) < HORIZON * vh
    level = rng.uniform(120, 255, count).astype(np.float32)
    rgb[y[keep], x[keep]] = level[keep, None]


def _paint_nebula(rgb: np.ndarray, region: Region, vh: int, rng: np.random.Generator) -> None:
    cloud = fractal_noise(rng, region.height, region.width, vh * 0.4, octaves=5)
    cloud = np.clip((cloud - 0.45) * 2.5, 0.0, 1.0) ** 1.5
    tint = fractal_noise(rng, region.height, region.width, vh * 0.8, octaves=2)
    a = np.asarray((140, 60, 170), np.float32)
    b = np.asarray((40, 120, 200), np.float32)
    colour = a + (b - a) * tint[..., None]
    rgb += colour * cloud[..., None] * 0.8


def paint_clouds(
    plan: ScenePlan, pal: Palette, region: Region, view: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Clouds above the horizon as a translucent layer (grey and dense when it rains)."""
    vw, vh = view
    heavy = bool(plan.weather & {"rain", "snow", "lightning"})
    cover = 0.35 if heavy else 0.5 if "clouds" in plan.weather else 0.62
    field = fractal_noise(rng, region.height, region.width, vh * 0.35, octaves=5)
    density = np.clip((field - cover) * 3.0, 0.0, 1.0)
    ys = region.ys()
    fade = np.clip((HORIZON * vh - ys) / (0.15 * vh), 0.0, 1.0)  # no clouds below the horizon
    density *= fade[:, None]
    if pal.night:
        colour = (40.0, 44.0, 60.0)
    elif heavy:
        colour = (120.0, 124.0, 132.0)
    elif plan.time_of_day in ("sunset", "sunrise"):
        colour = (255.0, 170.0, 140.0)
    else:
        colour = (250.0, 250.0, 252.0)
    shade = 0.75 + 0.25 * fractal_noise(rng, region.height, region.width, vh * 0.1, octaves=3)
    rgb = np.asarray(colour, np.float32) * shade[..., None]
    if "fog" in plan.weather:
        rgb += (np.asarray(pal.haze, np.float32) - rgb) * 0.45
    return _to_rgba(rgb, density * 0.9, plan.tones)


# --------------------------------------------------------------------------- the land


def _surface_texture(
    rng: np.random.Generator, region: Region, vh: int, strength: float
) -> np.ndarray:
    """Multiplicative detail so surfaces have something for the eye (and optical flow) to track."""
    detail = fractal_noise(rng, region.height, region.width, vh * 0.08, octaves=4)
    return 1.0 + (detail[..., None] - 0.5) * 2.0 * strength


def _hazed(colour: RGB, pal: Palette, amount: float) -> RGB:
    """A colour seen through `amount` of atmospheric haze (distance fades toward the sky)."""
    r, g, b = colour
    hr, hg, hb = pal.haze
    return (r + (hr - r) * amount, g + (hg - g) * amount, b + (hb - b) * amount)


def paint_far(
    plan: ScenePlan, pal: Palette, region: Region, view: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Distant ridges (or a skyline, or nothing at sea): pale with atmospheric haze."""
    vw, vh = view
    horizon = HORIZON * vh
    ys, xs = region.ys(), region.xs()
    if plan.setting == "ocean":
        profile = horizon - 0.02 * vh * ridge_line(rng, region.width, vh * 0.3)
        profile[(xs < 0.15 * vw) | (xs > 0.45 * vw)] = horizon + 1  # one island
    elif plan.setting == "city":
        profile = _skyline(rng, region, horizon, vh, 0.06, 0.2)
    elif plan.setting == "space":
        profile = np.full(region.width, region.y0 + region.height + 10.0, np.float32)
    else:
        height = 0.26 if plan.setting == "mountains" else 0.14
        profile = horizon - height * vh * (0.25 + 0.75 * ridge_line(rng, region.width, vh * 0.9))
    haze = 0.55 + (0.25 if "fog" in plan.weather else 0.0)
    base = _hazed(pal.far, pal, haze)
    t = np.clip((ys - horizon + 0.25 * vh) / (0.5 * vh), 0.0, 1.0)
    rgb = _vertical_mix(base, _hazed(pal.far, pal, haze * 0.7), t, region.width)
    if plan.setting == "mountains" and not pal.night:
        snowline = profile[None, :] + 0.04 * vh
        cap = np.clip((snowline - ys[:, None]) / (0.02 * vh), 0.0, 1.0)[..., None]
        rgb += (np.asarray(_hazed((235, 238, 245), pal, 0.3), np.float32) - rgb) * cap * 0.8
    rgb *= _surface_texture(rng, region, vh, 0.12) * pal.brightness
    if plan.setting == "city":
        _paint_windows(rgb, profile, region, vh, pal, rng, density=0.06)
    alpha = _edge_alpha(profile.astype(np.float32), ys)
    return _to_rgba(rgb, alpha, plan.tones)


def paint_mid(
    plan: ScenePlan, pal: Palette, region: Region, view: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Hills, dunes, buildings or the sea surface, between the horizon and the foreground."""
    vw, vh = view
    horizon = HORIZON * vh
    ys = region.ys()
    if plan.setting == "ocean":
        return _paint_sea(plan, pal, region, view, rng)
    if plan.setting == "city":
        profile = _skyline(rng, region, horizon + 0.02 * vh, vh, 0.15, 0.45)
    elif plan.setting == "space":
        return _paint_planet(plan, pal, region, view, rng)
    elif plan.setting == "desert":
        profile = horizon - 0.06 * vh * ridge_line(rng, region.width, vh * 1.2, octaves=2)
    else:
        profile = horizon + 0.02 * vh - 0.12 * vh * ridge_line(rng, region.width, vh * 0.7)
    haze = 0.25 + (0.3 if "fog" in plan.weather else 0.0)
    rgb = _fill(_hazed(pal.mid, pal, haze), region.height, region.width)
    shade = np.clip((ys - profile.min()) / (0.4 * vh), 0.0, 1.0)
    rgb *= (1.0 - 0.25 * shade)[:, None, None]
    rgb *= _surface_texture(rng, region, vh, 0.25) * pal.brightness
    if plan.setting == "city":
        _paint_windows(rgb, profile, region, vh, pal, rng, density=0.12)
    if plan.setting == "forest":
        _paint_tree_line(rgb, profile, region, vh, pal, rng)
    alpha = _edge_alpha(profile.astype(np.float32), ys)
    return _to_rgba(rgb, alpha, plan.tones)


def paint_near(
    plan: ScenePlan, pal: Palette, region: Region, view: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """The foreground strip: ground, beach, road or grass, the most textured layer."""
    vw, vh = view
    ys = region.ys()
    top = 0.82 if plan.setting != "space" else 0.9
    profile = top * vh - 0.05 * vh * ridge_line(rng, region.width, vh * 0.5, octaves=4)
    if plan.setting == "city":
        profile = np.full(region.width, 0.84 * vh, np.float32)
    rgb = _fill(pal.near, region.height, region.width)
    rgb *= _surface_texture(rng, region, vh, 0.35) * pal.brightness
    if plan.setting == "city":
        lane = np.abs(ys - 0.93 * vh) < 0.004 * vh
        rgb[lane] = np.asarray((230, 210, 120), np.float32) * pal.brightness
    alpha = _edge_alpha(profile.astype(np.float32), ys)
    if plan.setting == "forest":
        _paint_trees(rgb, alpha, region, vh, pal, rng)
    if "fog" in plan.weather:
        rgb += (np.asarray(pal.haze, np.float32) - rgb) * 0.2
    return _to_rgba(rgb, alpha, plan.tones)


def _skyline(
    rng: np.random.Generator, region: Region, base: float, vh: int, low: float, high: float
) -> np.ndarray:
    """A city silhouette: flat-topped buildings of random widths and heights."""
    profile = np.empty(region.width, np.float32)
    x = 0
    while x < region.width:
        w = int(rng.uniform(0.04, 0.1) * vh) + 2
        profile[x : x + w] = base - rng.uniform(low, high) * vh
        x += w
    return profile


def _paint_windows(
    rgb: np.ndarray,
    profile: np.ndarray,
    region: Region,
    vh: int,
    pal: Palette,
    rng: np.random.Generator,
    density: float,
) -> None:
    """Lit windows on buildings, more of them at night."""
    cell = max(2, int(vh * 0.018))
    lit_share = 0.35 if pal.night else density
    grid_h, grid_w = region.height // cell, region.width // cell
    lit = rng.random((grid_h, grid_w)) < lit_share
    mask = np.kron(lit, np.ones((cell, cell), bool))
    inner = np.zeros((cell, cell), bool)
    inner[cell // 4 : cell - cell // 4, cell // 4 : cell - cell // 4] = True
    mask &= np.tile(inner, (grid_h, grid_w))
    full = np.zeros(rgb.shape[:2], bool)
    full[: mask.shape[0], : mask.shape[1]] = mask
    full &= region.ys()[:, None] > profile[None, :] + cell
    colour = np.asarray(pal.accent if pal.night else (200, 215, 230), np.float32)
    rgb[full] = colour


def _paint_sea(
    plan: ScenePlan, pal: Palette, region: Region, view: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Water from the horizon down: sky reflection, wave streaks, a glitter path."""
    vw, vh = view
    horizon = HORIZON * vh
    ys = region.ys()
    depth = np.clip((ys - horizon) / (0.45 * vh), 0.0, 1.0)
    rgb = _vertical_mix(_hazed(pal.sky_horizon, pal, 0.1), pal.mid, depth**0.6, region.width)
    streaks = value_noise(rng, region.height, max(2, region.width // 8), vh * 0.01)
    streaks = cv2.resize(streaks, (region.width, region.height))
    rgb *= (0.8 + 0.4 * streaks)[..., None]
    if pal.sun_height > 0:
        xs = region.xs()
        path = np.exp(-(((xs - 0.68 * vw) / (0.06 * vw)) ** 2))[None, :] * (streaks > 0.6)
        rgb += (np.asarray(pal.light, np.float32) - rgb) * (path * 0.7)[..., None]
    rgb *= pal.brightness
    alpha = _edge_alpha(np.full(region.width, horizon, np.float32), ys)
    return _to_rgba(rgb, alpha, plan.tones)


def _paint_planet(
    plan: ScenePlan, pal: Palette, region: Region, view: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    vw, vh = view
    xs, ys = region.xs(), region.ys()
    cx, cy, r = 0.3 * vw, 0.45 * vh, 0.22 * vh
    d = np.sqrt((xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2)
    alpha = np.clip(r - d + 0.5, 0.0, 1.0)
    bands = value_noise(rng, region.height, 4, vh * 0.03)[:, :1]
    rgb = _fill(pal.mid, region.height, region.width) * (0.7 + 0.6 * bands)[..., None]
    light = np.clip(1.1 - (xs[None, :] - cx + r * 0.6) / (2 * r), 0.15, 1.0)
    rgb *= light[..., None]
    return _to_rgba(rgb, alpha, plan.tones)


def _paint_tree_line(
    rgb: np.ndarray,
    profile: np.ndarray,
    region: Region,
    vh: int,
    pal: Palette,
    rng: np.random.Generator,
) -> None:
    """Dark canopy bumps along the hill line."""
    bumps = value_noise(rng, 1, region.width, vh * 0.02)[0]
    canopy = profile + 0.03 * vh * bumps
    mask = region.ys()[:, None] < canopy[None, :] + 0.05 * vh
    rgb[mask] *= 0.6


def _paint_trees(
    rgb: np.ndarray,
    alpha: np.ndarray,
    region: Region,
    vh: int,
    pal: Palette,
    rng: np.random.Generator,
) -> None:
    """Conifers standing on the foreground, drawn into the layer's colour and alpha."""
    count = max(3, int(region.width / (0.12 * vh)))
    trunk = np.asarray(pal.near, np.float32) * 0.45 * pal.brightness
    crown = np.asarray(pal.near, np.float32) * 0.8 * pal.brightness
    for _ in range(count):
        x = rng.uniform(0, region.width)
        base = 0.86 * vh - region.y0 + rng.uniform(0, 0.08) * vh
        height = rng.uniform(0.25, 0.5) * vh
        half = height * 0.22
        pts = np.array(
            [
                [x, base - height],
                [x - half, base - height * 0.15],
                [x + half, base - height * 0.15],
            ],
            np.int32,
        )
        cv2.fillConvexPoly(rgb, pts, crown.tolist())
        cv2.fillConvexPoly(alpha, pts, 1.0)
        stem = np.array(
            [
                [x - half * 0.12, base - height * 0.15],
                [x + half * 0.12, base - height * 0.15],
                [x + half * 0.12, base],
                [x - half * 0.12, base],
            ],
            np.int32,
        )
        cv2.fillConvexPoly(rgb, stem, trunk.tolist())
        cv2.fillConvexPoly(alpha, stem, 1.0)
