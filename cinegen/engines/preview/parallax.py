"""Image to video: the camera moves over a still with parallax (near parts move more).

Steps: estimate a nearness map from classical cues (lower in the frame, sharper and more
saturated = nearer); turn the prompt's camera move into a per-frame pose; per frame build a
coarse backward map (each output pixel looks up its source by the pose applied at its own
nearness), scale the map up and warp the full-resolution image by it: in one pass with first +
last frame's kernel (warp.py) where it is built, else with `cv2.remap`. A small extra zoom
keeps every lookup inside the image, so no mirrored borders show; a move away from the image
looks outside it, and there `cv2.remap` mirrors the borders. Frame 0 is the image itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from cinegen.engines.preview.camera import Pose, Velocity, handheld_jitter, pose_at, velocity_for
from cinegen.engines.preview.camera_control import FITTED, control_velocity
from cinegen.engines.preview.samples import varied_velocity
from cinegen.engines.preview.warp import FUSED, four_channels, three_channels, warp_blend
from cinegen.engines.prompt import ScenePlan

MAP_STEP = 8  # the backward map is computed every MAP_STEP pixels, then interpolated
MAX_TRAVEL = 0.12  # most the camera may travel (fraction of the frame) over a whole clip


def image_velocity(plan: ScenePlan, seconds: float, seed: int | None = None) -> Velocity:
    """The prompt's move, turned into camera translation (so it has parallax), capped in size;
    given a seed, varied as that sample's (samples.py).

    Pans become mostly trucks and zooms mostly dollies: a turn of the camera shows no
    parallax, a move of the camera does.
    """
    base = velocity_for(plan.camera, plan.speed)
    if plan.camera == "default":
        base = Velocity(dolly=0.03, truck=0.01)
    if seed is not None:
        base = varied_velocity(base, seed)
    pan, tilt = base.pan * 0.35, base.tilt * 0.35
    truck = base.truck + base.pan * 0.65
    rise = base.rise + base.tilt * 0.65
    dolly = base.dolly + base.zoom * 1.5
    travel = max(abs(pan) + abs(truck), abs(tilt) + abs(rise), abs(dolly) * 0.5) * seconds
    k = min(1.0, MAX_TRAVEL / travel) if travel > 0 else 1.0
    return Velocity(
        pan=pan * k,
        tilt=tilt * k,
        zoom=base.zoom * 0.3 * k,
        dolly=dolly * k,
        truck=truck * k,
        rise=rise * k,
        shake=base.shake,
    )


def estimate_nearness(image: np.ndarray) -> np.ndarray:
    """A smooth nearness map in [0, 1] (1 = near) at MAP_STEP resolution.

    Cues: the ground plane rises toward the horizon (lower = nearer), in-focus detail is
    usually the subject, and distance desaturates (aerial perspective).
    """
    h, w = image.shape[:2]
    small_w, small_h = max(2, w // MAP_STEP + 1), max(2, h // MAP_STEP + 1)
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA).astype(np.float32)
    rows = np.linspace(0.0, 1.0, small_h, dtype=np.float32)[:, None]
    vertical = np.clip((rows - 0.35) / 0.65, 0.0, 1.0) * np.ones((1, small_w), np.float32)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    detail = cv2.resize(
        np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3)),
        (small_w, small_h),
        interpolation=cv2.INTER_AREA,
    )
    detail = detail / (np.percentile(detail, 95) + 1e-3)
    saturation = (small.max(axis=2) - small.min(axis=2)) / 255.0
    cue = np.clip(0.55 * vertical + 0.3 * np.clip(detail, 0, 1) + 0.15 * saturation, 0, 1)
    blur = max(1.0, min(small_w, small_h) / 8.0)
    near = cv2.GaussianBlur(cue, (0, 0), blur)
    span = near.max() - near.min()
    return (near - near.min()) / (span if span > 1e-6 else 1.0)


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Output pixel coordinates at the coarse map's sample points."""
    gw, gh = max(2, width // MAP_STEP + 1), max(2, height // MAP_STEP + 1)
    xs = np.linspace(0, width - 1, gw, dtype=np.float32)
    ys = np.linspace(0, height - 1, gh, dtype=np.float32)
    return np.meshgrid(xs, ys)


def _source_coords(
    pose: Pose,
    near: np.ndarray,
    gx: np.ndarray,
    gy: np.ndarray,
    width: int,
    height: int,
    extra_zoom: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Where each coarse output sample reads from, per its own nearness (see camera.py)."""
    scale = np.exp(pose.zoom) * extra_zoom / np.maximum(0.1, 1.0 - pose.dolly * near)
    shift_x = (pose.pan + pose.truck * near) * width
    shift_y = -(pose.tilt + pose.rise * near) * height
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return cx + shift_x + (gx - cx) / scale, cy + shift_y + (gy - cy) / scale


def _zoom_to_fit(
    pose: Pose, near: np.ndarray, gx: np.ndarray, gy: np.ndarray, width: int, height: int
) -> float:
    """The smallest extra zoom (≥ 1) that keeps every lookup inside the image."""
    zoom = 1.0
    for _ in range(6):
        sx, sy = _source_coords(pose, near, gx, gy, width, height, zoom)
        over_x = max(0.0, -sx.min(), sx.max() - (width - 1)) / (width / 2.0)
        over_y = max(0.0, -sy.min(), sy.max() - (height - 1)) / (height / 2.0)
        over = max(over_x, over_y)
        if over <= 1e-4:
            break
        zoom *= 1.0 / max(0.2, 1.0 - over)
    return zoom


class ParallaxShot:
    """A camera move over a still image: the prompt's, or with a seed, that sample's (its own
    speed, drift and handheld jitter; samples.py); or, given Vertex's `cameraControl`, that
    move exactly (camera_control.py), at the sample's speed."""

    def __init__(
        self,
        image: np.ndarray,
        plan: ScenePlan,
        fps: int,
        num_frames: int,
        seed: int | None = None,
        camera_control: str | None = None,
    ) -> None:
        self.image = np.ascontiguousarray(image)
        self.source = four_channels(self.image)
        self.height, self.width = image.shape[:2]
        self.fps = fps
        self.num_frames = num_frames
        seconds = num_frames / fps
        if camera_control is None:
            self.velocity = image_velocity(plan, seconds, seed)
        else:
            self.velocity = control_velocity(camera_control, seconds, MAX_TRAVEL, seed)
        self.jitter = (
            np.zeros((num_frames, 2))
            if seed is None
            else handheld_jitter(self.velocity.shake, num_frames, fps, seed)
        )
        self.near = estimate_nearness(image)
        self.gx, self.gy = _grid(self.width, self.height)
        # Moving away from the image reveals what is outside it: there, mirror the borders.
        # So does a control's move sideways (camera_control.py: it adds no zoom).
        self.fit = self.velocity.dolly >= 0 and self.velocity.zoom >= 0
        if camera_control is not None:
            self.fit = camera_control in FITTED
        # The fused kernel where every lookup stays inside the image, else OpenCV's remap.
        self.one_pass = self.fit and FUSED
        # Each path's buffers, reused by every frame: at 4k the full-size ones are over
        # glibc's 32 MB mmap ceiling, so allocated afresh they would be mapped and zero-filled
        # again each frame, time spent in page faults.
        if self.one_pass:
            # warp_blend's planes: the first image's flow, where it landed (everywhere), and
            # a second image that is nowhere.
            self._planes = np.zeros((6, self.gx.shape[0], self.width), np.float32)
            self._planes[4] = 1.0
        else:
            self._offsets = np.empty((self.height, self.width, 2), np.float32)
            self._warped = np.empty((self.height, self.width, 4), np.uint8)

    def pose(self, index: int) -> Pose:
        jitter = self.jitter[min(index, self.num_frames - 1)]
        return pose_at(self.velocity, index / self.fps, (float(jitter[0]), float(jitter[1])))

    def frame(self, index: int) -> np.ndarray:
        if index == 0:
            return self.image.copy()
        pose = self.pose(index)
        zoom = 1.0
        if self.fit:
            zoom = _zoom_to_fit(pose, self.near, self.gx, self.gy, self.width, self.height)
        sx, sy = _source_coords(pose, self.near, self.gx, self.gy, self.width, self.height, zoom)
        # Interpolate the displacement, not the coordinates: resizing is exact for offsets,
        # and a relative map needs no full-size grid.
        dx, dy = (sx - self.gx).astype(np.float32), (sy - self.gy).astype(np.float32)
        if self.one_pass:
            return self._warp_in_one_pass(dx, dy)
        return self._remap(dx, dy)

    def _warp_in_one_pass(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """First + last frame's fused kernel (warp.py), given this image twice and all the
        weight on the first, so it never samples the second. The displacement is scaled up
        to full width here and between rows inside the kernel, so no full-size map is made,
        and RGB comes out directly, in less time than `_remap` takes. The kernel repeats the
        edges, so it is used where every lookup stays inside the image."""
        rows = (self.width, self._planes.shape[1])
        cv2.resize(dx, rows, dst=self._planes[0], interpolation=cv2.INTER_LINEAR)
        cv2.resize(dy, rows, dst=self._planes[1], interpolation=cv2.INTER_LINEAR)
        return warp_blend(self.source, self.source, self._planes, (1.0, 1.0, 0.0, 0.0), 0.0)

    def _remap(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """The displacement scaled up to a full-size map, then OpenCV's remap, which mirrors
        the borders where a move looks outside the image."""
        offsets = cv2.resize(
            np.dstack([dx, dy]),
            (self.width, self.height),
            dst=self._offsets,
            interpolation=cv2.INTER_LINEAR,
        )
        warped = cv2.remap(  # type: ignore[call-overload]  # OpenCV 4 stubs: map2 may be None
            self.source,
            offsets,
            None,
            cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
            dst=self._warped,
            borderMode=cv2.BORDER_REFLECT101,
        )
        return three_channels(warped)

    def frames(self) -> Iterator[np.ndarray]:
        for index in range(self.num_frames):
            yield self.frame(index)
