"""Text to video: a layered procedural landscape filmed by the camera the prompt asks for.

Steps: plan the camera poses for every frame; work out which part of each depth layer the
camera will ever see; paint the layers once (flattened into one when the move has no
parallax); then per frame warp + blend the layers, draw sprites and the weather on top, all at
the work size (resolution.py); the encoder scales the frames up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from cinegen.engines.preview.camera import (
    Pose,
    Velocity,
    handheld_jitter,
    layer_matrix,
    pose_at,
    velocity_for,
)
from cinegen.engines.preview.layers import (
    Layer,
    Region,
    has_clouds,
    paint_clouds,
    paint_far,
    paint_mid,
    paint_near,
    paint_sky,
)
from cinegen.engines.preview.palette import make_palette
from cinegen.engines.preview.particles import draw_fields, flash, lightning_flash, make_fields
from cinegen.engines.preview.resolution import work_size
from cinegen.engines.preview.sprites import DEFAULT_SUBJECTS, draw_sprites, make_sprites
from cinegen.engines.preview.warp import three_channels
from cinegen.engines.prompt import ScenePlan

Painter = Callable[..., np.ndarray]
LAND: tuple[tuple[str, float, Painter], ...] = (
    ("far", 0.25, paint_far),
    ("mid", 0.5, paint_mid),
    ("near", 1.0, paint_near),
)
CLOUD_DRIFT = 0.012  # fraction of the view width per second (three times that in wind)
_RNG_INDEX = {"sky": 0, "far": 1, "mid": 2, "near": 3, "clouds": 4}


def _region_seen(
    poses: list[Pose], nearness: float, view: tuple[int, int], drift_per_frame: float = 0.0
) -> Region:
    """The bounding box, in layer pixels, of everything the camera sees of one layer."""
    vw, vh = view
    corners = np.array([[0, 0, 1], [vw, 0, 1], [0, vh, 1], [vw, vh, 1]], np.float64).T
    lo = np.array([np.inf, np.inf])
    hi = -lo
    for index, pose in enumerate(poses):
        pts = layer_matrix(pose, nearness, vw, vh) @ corners
        pts[0] -= drift_per_frame * index
        lo = np.minimum(lo, pts.min(axis=1))
        hi = np.maximum(hi, pts.max(axis=1))
    x0, y0 = int(np.floor(lo[0])) - 2, int(np.floor(lo[1])) - 2
    x1, y1 = int(np.ceil(hi[0])) + 3, int(np.ceil(hi[1])) + 3
    return Region(x0, y0, x1 - x0, y1 - y0)


def _union(regions: list[Region]) -> Region:
    x0 = min(r.x0 for r in regions)
    y0 = min(r.y0 for r in regions)
    x1 = max(r.x0 + r.width for r in regions)
    y1 = max(r.y0 + r.height for r in regions)
    return Region(x0, y0, x1 - x0, y1 - y0)


def _over(below: np.ndarray, above: np.ndarray) -> np.ndarray:
    """RGBA `above` composited over RGBA `below` (painting time only).

    Colour is the alpha-weighted mean of the two, `blendLinear`'s own normalised mix with
    weights a_top and a_bottom·(1 − a_top); alpha is their sum.
    """
    a_top = above[..., 3].astype(np.float32) * np.float32(1.0 / 255.0)
    a_bottom = below[..., 3].astype(np.float32) * np.float32(1.0 / 255.0)
    w_bottom = a_bottom * (1.0 - a_top)
    out = cv2.blendLinear(above, below, a_top, w_bottom)
    out[..., 3] = np.clip(((a_top + w_bottom) * 255.0).round(), 0, 255)
    return out


def _frame_rows(layer: Layer, matrix: np.ndarray, height: int) -> tuple[int, int]:
    """The frame rows where the layer starts to show and where it becomes solid."""
    scale, offset = matrix[1, 1], matrix[1, 2]  # canvas_y = scale * frame_y + offset

    def to_frame(row: float) -> float:
        return (row - offset) / scale

    top = int(np.floor(to_frame(layer.top))) - 1
    solid = int(np.ceil(to_frame(layer.solid))) + 1
    return min(max(top, 0), height), min(max(solid, 0), height)


def _warp_rows(image: np.ndarray, matrix: np.ndarray, width: int, y0: int, y1: int) -> np.ndarray:
    """Frame rows [y0, y1) of a layer warped by `matrix` (frame → canvas)."""
    band = matrix.copy()
    band[:, 2] += band[:, 1] * y0
    return cv2.warpAffine(
        image,
        band,
        (width, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _merge_still(layers: list[tuple]) -> list[tuple]:
    """Merge neighbouring non-drifting layers (same region) into one, keeping the order."""
    merged: list[tuple] = []
    for layer in layers:
        if merged and merged[-1][4] == 0 and layer[4] == 0:
            below = merged[-1]
            merged[-1] = (_over(below[0], layer[0]), below[1], below[2], below[3], 0.0)
        else:
            merged.append(layer)
    return merged


def has_parallax(v: Velocity) -> bool:
    return bool(v.truck or v.rise or v.dolly)


class LandscapeScene:
    """The world of a text prompt: layers painted once, filmed frame by frame."""

    def __init__(
        self, plan: ScenePlan, width: int, height: int, fps: int, num_frames: int, seed: int
    ) -> None:
        self.plan = plan
        self.view = work_size(width, height)
        self.fps = fps
        self.seed = seed
        self.palette = make_palette(plan)
        self.velocity = velocity_for(plan.camera, plan.speed)
        jitter = handheld_jitter(self.velocity.shake, num_frames, fps, seed)
        self.poses = [pose_at(self.velocity, i / fps, tuple(jitter[i])) for i in range(num_frames)]
        self.layers = self._paint_layers()
        self.sprites, self.wrap = self._make_sprites()
        wind = 0.08 if "wind" in plan.weather else 0.0
        self.fields = make_fields(
            plan.weather, np.random.default_rng([seed, 3]), self.palette.night, wind, height
        )

    def _paint_layers(self) -> list[Layer]:
        """Paint every depth layer over the region the camera will see of it.

        Without parallax every static layer moves alike, so they are merged into one (sky and
        land) and only drifting clouds stay apart: fewer warps per frame.
        """
        stack: list[tuple[str, float, float, Painter]] = [("sky", 0.0, 0.0, paint_sky)]
        if has_clouds(self.plan, self.palette):
            windy = 3.0 if "wind" in self.plan.weather else 1.0
            direction = 1.0 if np.random.default_rng([self.seed, 4]).random() < 0.5 else -1.0
            drift = direction * CLOUD_DRIFT * windy * self.view[0]
            stack.append(("clouds", 0.0, drift, paint_clouds))
        stack += [(name, nearness, 0.0, paint) for name, nearness, paint in LAND]
        regions = [_region_seen(self.poses, n, self.view, d / self.fps) for _, n, d, _ in stack]
        flat = not has_parallax(self.velocity)
        if flat:
            still = _union([r for r, (_, _, d, _) in zip(regions, stack, strict=True) if d == 0])
            regions = [r if d else still for r, (_, _, d, _) in zip(regions, stack, strict=True)]

        def paint_one(layer: tuple[str, float, float, Painter], region: Region) -> np.ndarray:
            name, _, _, paint = layer
            rng = np.random.default_rng([self.seed, 1, _RNG_INDEX[name]])
            return paint(self.plan, self.palette, region, self.view, rng)

        # Each layer has its own generator, so they can be painted side by side (NumPy and
        # OpenCV let go of the GIL for whole-image work): the first frame comes sooner.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cinegen-paint") as pool:
            painted = list(pool.map(paint_one, stack, regions))
        layers = [
            (rgba, region, nearness, name, drift)
            for rgba, region, (name, nearness, drift, _) in zip(
                painted, regions, stack, strict=True
            )
        ]
        if flat:
            layers = _merge_still(layers)
        return [Layer.from_rgba(*layer) for layer in layers]

    def _make_sprites(self) -> tuple[list, tuple[float, float]]:
        subjects = self.plan.subjects or DEFAULT_SUBJECTS.get(self.plan.setting, ())
        vw = self.view[0]
        span = (-0.5 * vw, 1.5 * vw)
        rng = np.random.default_rng([self.seed, 2])
        return make_sprites(subjects, self.view, span, rng, self.palette.night), span

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` at the work size (`self.view`), uint8 RGB: the caller scales it up."""
        pose = self.poses[index]
        seconds = index / self.fps
        view = self._compose(pose, seconds)
        self._draw_sprites(view, pose, seconds)
        draw_fields(view, self.fields, seconds)
        if "lightning" in self.plan.weather:
            flash(view, lightning_flash(index, self.fps, self.seed))
        return view

    def _compose(self, pose: Pose, seconds: float) -> np.ndarray:
        """Warp and stack the layers back to front, touching only the rows each one shows.

        A layer is transparent above its `top` row and opaque below its `solid` row, so per
        frame it is warped only where no nearer layer hides it, and blended only in the band
        between the two (its ridge line); elsewhere it is copied.
        """
        vw, vh = self.view
        out = np.empty((vh, vw, 4), np.uint8)
        matrices = []
        for layer in self.layers:
            matrix = layer_matrix(pose, layer.nearness, vw, vh)
            matrix[:, 2] -= (layer.region.x0 + layer.drift * seconds, layer.region.y0)
            matrices.append(matrix)
        hidden_from = vh  # rows at and below this are covered by a nearer opaque layer
        spans = []
        for layer, matrix in zip(reversed(self.layers), reversed(matrices), strict=True):
            top, solid = _frame_rows(layer, matrix, vh)
            spans.append((top, solid, hidden_from))
            hidden_from = min(hidden_from, solid)
        spans.reverse()
        for index, (layer, matrix, (top, solid, hidden)) in enumerate(
            zip(self.layers, matrices, spans, strict=True)
        ):
            if index == 0:
                top = 0
            if top >= hidden:
                continue
            rgba = _warp_rows(layer.rgba, matrix, vw, top, hidden)
            blend_end = top if index == 0 else min(max(solid, top), hidden)
            if blend_end > top:
                band = rgba[: blend_end - top]
                weight = band[..., 3].astype(np.float32) * (1.0 / 255.0)
                out[top:blend_end] = cv2.blendLinear(band, out[top:blend_end], weight, 1.0 - weight)
            out[blend_end:hidden] = rgba[blend_end - top :]
        return three_channels(out)

    def _draw_sprites(self, view: np.ndarray, pose: Pose, seconds: float) -> None:
        if not self.sprites:
            return
        vw, vh = self.view
        to_screen = {}
        for nearness in {s.nearness for s in self.sprites}:
            m = layer_matrix(pose, nearness, vw, vh)
            to_screen[nearness] = (1.0 / m[0, 0], m[0, 2], m[1, 2])
        draw_sprites(view, self.sprites, seconds, to_screen, self.wrap, self.palette.night)

    def frames(self) -> Iterator[np.ndarray]:
        for index in range(len(self.poses)):
            yield self.frame(index)
