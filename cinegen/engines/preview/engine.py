"""The preview engine: a fast, deterministic CPU renderer that honours every input.

It is not a learned model and does not pretend to be one: classical graphics, computer vision
and signal processing (NumPy, OpenCV, PyAV). Per mode:

- text: a layered landscape from the prompt, filmed by the named camera move (scene.py);
- image: the camera moves over the first frame with parallax (parallax.py);
- interpolation: optical-flow motion from the first frame to the last (interpolate.py);
- references: the assets composited into the prompt's scene, moving (references.py);
- extension: the input video unchanged, then 7 s continuing its motion (extension.py);
- edit: the input video edited under a mask, as long as it is (editing.py).

In the modes that start from footage, each sample's seed picks how its camera moves over it
(samples.py): samples of one request differ, as text samples do, and none touches the given
frames.

Frames are produced lazily, one per `next()`, each after a `progress(i / n)` call (which may
raise `Cancelled`). Everything random comes from generators seeded by `spec.seed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from cinegen.core.errors import EngineError
from cinegen.core.request import Mode
from cinegen.engines.base import ProgressFn, RenderSpec
from cinegen.engines.preview.editing import edit_frames
from cinegen.engines.preview.extension import Extension
from cinegen.engines.preview.interpolate import FlowInterpolation
from cinegen.engines.preview.parallax import ParallaxShot
from cinegen.engines.preview.particles import Field, draw_fields, make_fields
from cinegen.engines.preview.references import paste, place_assets, style_grade
from cinegen.engines.preview.resolution import footage_size
from cinegen.engines.preview.samples import Detour, Drift
from cinegen.engines.preview.scene import LandscapeScene
from cinegen.engines.prompt import ScenePlan, parse_prompt
from cinegen.engines.soundtrack import for_spec
from cinegen.media.clip import Clip
from cinegen.media.decode import fit_image

WEATHER_FADE_SECONDS = 1.0

_SOUNDTRACKS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cinegen-audio")
"""Soundtracks are made here, while the frames are rendered and encoded: otherwise, on a small
CPU, a clip's audio holds up its first frame."""


class PreviewEngine:
    name = "preview"

    def render(self, spec: RenderSpec, progress: ProgressFn) -> Clip:
        """Plan the clip; the frames are rendered as the caller pulls them."""
        spec = _fitted(spec)
        _check(spec)
        plan = parse_prompt(spec.prompt or "", spec.negative_prompt or "")
        audio: Future[np.ndarray] | None = None
        if spec.audio:
            audio = _SOUNDTRACKS.submit(for_spec, spec, plan)
        frames, size, notes = _frames_for(spec, plan)
        notes.update(
            engine=self.name,
            camera=spec.camera_control or plan.camera,
            setting=plan.setting,
            time_of_day=plan.time_of_day,
            weather=sorted(plan.weather),
        )
        return Clip(
            frames=_with_progress(frames, spec.num_frames, progress),
            num_frames=spec.num_frames,
            width=spec.width,
            height=spec.height,
            fps=spec.fps,
            audio=audio,
            notes={"work_size": f"{size[0]}x{size[1]}", **notes},
            work_size=None if size == (spec.width, spec.height) else size,
            keyframes=spec.seam,
        )


def _fitted(spec: RenderSpec) -> RenderSpec:
    """First/last frames at exactly the output size (callers fit them; this forgives those
    that did not), as contiguous uint8 RGB."""
    changes: dict[str, Any] = {}
    for field in ("first_frame", "last_frame"):
        image = getattr(spec, field)
        if image is None or spec.width <= 0 or spec.height <= 0:
            continue
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
        if image.shape[:2] != (spec.height, spec.width):
            image = fit_image(image, spec.width, spec.height)
        changes[field] = image
    return replace(spec, **changes) if changes else spec


def _check(spec: RenderSpec) -> None:
    if spec.width <= 0 or spec.height <= 0 or spec.num_frames <= 0 or spec.fps <= 0:
        raise EngineError("The requested video has no frames or no size.")
    if spec.mode is Mode.EXTENSION and spec.input_video is None:
        raise EngineError("An extension needs an input video.")
    if spec.mode is Mode.EDIT and (spec.input_video is None or spec.mask is None):
        raise EngineError("A masked edit needs an input video and a mask.")
    if spec.mode in (Mode.IMAGE, Mode.INTERPOLATION) and spec.first_frame is None:
        raise EngineError("This mode needs a first frame.")
    if spec.mode is Mode.INTERPOLATION and spec.last_frame is None:
        raise EngineError("Interpolation needs a last frame.")


def _with_progress(
    frames: Iterator[np.ndarray], total: int, progress: ProgressFn
) -> Iterator[np.ndarray]:
    """Exactly `total` frames, reporting progress before each one (where cancel can strike)."""
    produced = 0
    for frame in frames:
        if produced == total:
            break
        progress(produced / total)
        yield frame
        produced += 1
    if produced != total:
        raise EngineError(f"The preview engine produced {produced} of {total} frames.")
    progress(1.0)


def _frames_for(
    spec: RenderSpec, plan: ScenePlan
) -> tuple[Iterator[np.ndarray], tuple[int, int], dict]:
    """The frame iterator for the spec's mode, the size its frames come at (the work size,
    resolution.py), and notes about how it was made."""
    if spec.mode is Mode.IMAGE:
        assert spec.first_frame is not None
        size = footage_size((spec.first_frame,), spec.width, spec.height)
        shot = ParallaxShot(
            _resized(spec.first_frame, size),
            plan,
            spec.fps,
            spec.num_frames,
            spec.seed,
            spec.camera_control,
        )
        frames = _with_weather(shot.frames(), _weather(spec, plan), spec.fps)
        notes: dict[str, object] = {"mode": "image"}
        if spec.camera_control is not None:
            notes["camera_control"] = f"{spec.camera_control} (the prompt's camera ignored)"
        return frames, size, notes
    if spec.mode is Mode.INTERPOLATION:
        assert spec.first_frame is not None and spec.last_frame is not None
        ends = (spec.first_frame, spec.last_frame)
        size = footage_size(ends, spec.width, spec.height)
        first, last = (_resized(image, size) for image in ends)
        blend = FlowInterpolation(first, last, spec.num_frames, Detour.for_seed(spec.seed))
        return blend.frames(), size, {"mode": "interpolation"}
    if spec.mode is Mode.EXTENSION:
        assert spec.input_video is not None
        ext = Extension(
            spec.input_video,
            spec.width,
            spec.height,
            spec.fps,
            spec.num_frames,
            _weather(spec, plan),
            Drift.for_seed(spec.seed),
        )
        notes = {"mode": "extension", "input_frames": spec.input_video.num_frames}
        return ext.frames(), (spec.width, spec.height), notes
    if spec.mode is Mode.EDIT:
        frames, notes = edit_frames(spec, plan)
        return frames, (spec.width, spec.height), notes
    scene = LandscapeScene(plan, spec.width, spec.height, spec.fps, spec.num_frames, spec.seed)
    if spec.mode is Mode.REFERENCES and spec.reference_images:
        frames, notes = _with_references(scene, spec)
        return frames, (spec.width, spec.height), notes
    return scene.frames(), scene.view, {"mode": "text"}


def _resized(
    image: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_AREA
) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=interpolation)


def _weather(spec: RenderSpec, plan: ScenePlan) -> list[Field]:
    """The prompt's falling weather (rain, snow, sparks) for modes that start from footage."""
    rng = np.random.default_rng([spec.seed, 3])
    return make_fields(plan.weather, rng, plan.time_of_day == "night", 0.0, spec.height)


def _with_weather(
    frames: Iterator[np.ndarray], fields: list[Field], fps: int
) -> Iterator[np.ndarray]:
    """Weather over an image-to-video shot: none on frame 0 (it is the image), then fading in
    over a second."""
    for index, frame in enumerate(frames):
        if fields and index > 0:
            seconds = index / fps
            draw_fields(frame, fields, seconds, share=seconds / WEATHER_FADE_SECONDS)
        yield frame


def _with_references(scene: LandscapeScene, spec: RenderSpec) -> tuple[Iterator[np.ndarray], dict]:
    """The text scene with asset references pasted in and style references as a grade."""
    types = spec.reference_types or ("asset",) * len(spec.reference_images)
    assets = tuple(
        img for img, kind in zip(spec.reference_images, types, strict=False) if kind != "style"
    )
    styles = tuple(
        img for img, kind in zip(spec.reference_images, types, strict=False) if kind == "style"
    )
    rng = np.random.default_rng([spec.seed, 5])
    placements = place_assets(assets, spec.width, spec.height, rng)
    grade = style_grade(scene.frame(0), styles)

    def frames() -> Iterator[np.ndarray]:
        """The scene graded at its work size, scaled up, then the assets pasted at full size
        (so each stays as sharp as its placed scale)."""
        for index in range(spec.num_frames):
            frame = scene.frame(index)
            if grade is not None:
                frame = grade.apply(frame)
            frame = _resized(frame, (spec.width, spec.height), cv2.INTER_LINEAR)
            for placement in placements:
                paste(frame, placement, index / spec.fps)
            yield frame

    notes = {
        "mode": "references",
        "reference_scales": [p.scale for p in placements],
        "reference_sizes": [(p.image.shape[1], p.image.shape[0]) for p in placements],
        "style_references": len(styles),
    }
    return frames(), notes
