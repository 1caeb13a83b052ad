"""The diffusers engine: open-weight video models (Wan, LTX-Video) behind every Veo mode.

`render` picks the pipeline the registry configures for the request's model and mode, makes
the frames at the model's own size, rate and frame count (in overlapping chunks when the model
cannot make the whole length at once), then streams them out in the contract's shape (video.py).
A masked edit (Vertex `mask`) runs Wan VACE over the input in windows and pastes the input's
pixels back outside the mask (editing.py).
Progress comes from `callback_on_step_end`; the progress callback raises `Cancelled` to abort
at the next step. Out of memory fails the operation with a clear error and frees what the call
held, so the next job runs normally.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cinegen.core.errors import Cancelled, EngineError, OutOfMemory
from cinegen.core.request import Mode
from cinegen.engines.base import ProgressFn, RenderSpec
from cinegen.engines.diffusers import audio as sound
from cinegen.engines.diffusers import editing, video
from cinegen.engines.diffusers.calls import (
    IMAGE_CLASSES,
    Conditioning,
    call_kwargs,
    context_count,
    model_audio,
    seeded,
)
from cinegen.engines.diffusers.camera import camera_note, camera_prompt
from cinegen.engines.diffusers.config import PipelineEntry, Registry
from cinegen.engines.diffusers.guidance import encode_prompts, paired_guidance
from cinegen.engines.diffusers.loading import (
    LoadOptions,
    PipelineCache,
    check_recipes,
    free_memory,
    recipe,
)
from cinegen.engines.soundtrack import fit_length, input_audio
from cinegen.media.clip import AUDIO_RATE, FPS, Clip
from cinegen.media.decode import fit_image, iter_video_frames

log = logging.getLogger("cinegen.diffusers")

GENERATION_SHARE = 0.9  # of a sample's progress; the rest is resampling and encoding
UPSCALE_THRESHOLD = 1.25  # output/generated size above which the notes call it upscaling


@dataclass
class _Plan:
    entry: PipelineEntry
    follow: PipelineEntry  # the pipeline that continues a chunk (the same one when it can)
    width: int  # generation size
    height: int
    need: int  # model frames on the timeline (anchor included for an extension)
    chunks: int
    # Native audio (LTX-2): each chunk's waveform at 48 kHz stereo with the output times its
    # first sample plays at and its new frames start (audio.stitch), and what made it.
    sound: list[tuple[np.ndarray, float, float]] = field(default_factory=list)
    sound_by: str = ""
    heard: tuple[np.ndarray, int] | None = None  # the last call's raw (audio, rate)


def _largest_valid(entry: PipelineEntry) -> int:
    return (entry.max_frames - 1) // entry.frames_per_latent * entry.frames_per_latent + 1


@dataclass(frozen=True)
class Warmed:
    """One entry warmed: seconds to load its checkpoint and for its first (tiny) call."""

    entry: str
    load_s: float
    call_s: float
    shape: str  # what the first call made: "WxH, N frames"


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


class DiffusersEngine:
    name = "diffusers"

    def __init__(self, registry: Registry, opts: LoadOptions) -> None:
        check_recipes(registry, opts)  # RegistryError at start-up, not on the first call
        self.registry = registry
        self.cache = PipelineCache(opts)

    # ------------------------------------------------------------------ entry point

    def render(self, spec: RenderSpec, progress: ProgressFn) -> Clip:
        model = spec.model
        entry = self.registry.pipeline_for(model, spec.mode.value)
        if entry is None:
            raise EngineError(
                f"{model or 'This model'} has no diffusers pipeline configured for "
                f"{spec.mode.value} requests (see the [models] table of {self.registry.source})."
            )
        plan = self._plan(spec, model, entry)
        edit = editing.edit_plan(spec) if spec.mode is Mode.EDIT else None
        with self.cache.lock:
            try:
                if edit is not None:
                    timeline = self._edit(spec, plan, edit, progress)
                else:
                    timeline = self._generate(spec, plan, progress)
                track = self._audio(spec, plan) if spec.audio else None
            except Cancelled:
                free_memory()
                raise
            except EngineError:
                free_memory()
                raise
            except Exception as exc:
                free_memory()
                if _is_oom(exc):
                    raise OutOfMemory(self._oom_message(plan, spec)) from exc
                raise
        notes = self._notes(spec, plan, timeline, track)
        new = spec.num_frames - self._input_frames(spec)
        if edit is not None:
            notes.pop("upscaler", None)  # an edit's frames are resized, not upscaled
            notes.update(self._edit_notes(spec, plan, edit))
            frames = self._edited(spec, plan, edit, timeline, progress)
        else:
            frames = self._output(spec, plan, timeline, new, progress)
        return Clip(
            frames=frames,
            num_frames=spec.num_frames,
            width=spec.width,
            height=spec.height,
            fps=FPS,
            audio=track[0] if track else None,
            notes={**notes, **(track[1] if track else {})},
            keyframes=spec.seam,
        )

    # ------------------------------------------------------------------ warm start

    def warm_plan(self) -> tuple[list[PipelineEntry], list[PipelineEntry]]:
        """The entries some model routes to, split into those whose checkpoints fit in
        `max_loaded` together (warmed, in registry order) and the rest (loaded on demand)."""
        used = {name for model in self.registry.models.values() for name in model.modes.values()}
        warm: list[PipelineEntry] = []
        skipped: list[PipelineEntry] = []
        bases: set[tuple[str, str]] = set()
        for entry in self.registry.pipelines.values():
            if entry.name not in used:
                continue
            base = (entry.path, self.cache.opts.for_entry(entry).variant())
            if base in bases or len(bases) < max(1, self.cache.opts.max_loaded):
                bases.add(base)
                warm.append(entry)
            else:
                skipped.append(entry)
        return warm, skipped

    def warm(self, entry: PipelineEntry) -> Warmed:
        """Load `entry` and run one 1-step call at its 16:9 size and smallest frame count, so
        torch.compile (when on) has compiled for that shape before a user asks."""
        width, height = video.generation_size(1280, 720, entry.multiple, entry.max_area, entry.size)
        count = min(video.model_frame_count(1, entry.frames_per_latent), _largest_valid(entry))
        started = time.perf_counter()
        with self.cache.lock:
            self.cache.for_entry(entry)
            loaded = time.perf_counter()
            spec = RenderSpec(Mode.TEXT, "warm-up", "", 1280, 720, FPS, count, 0, False)
            plan = _Plan(entry, entry, width, height, count, 1)
            cond = Conditioning()
            if entry.cls in IMAGE_CLASSES:
                cond.first = np.full((height, width, 3), 127, np.uint8)
            try:
                self._call(spec, plan, replace(entry, steps=1), cond, count, 0, lambda _: None)
            except Exception as exc:
                free_memory()
                if _is_oom(exc):
                    raise OutOfMemory(f"{entry.name}: out of memory warming up.") from exc
                raise
        done = time.perf_counter()
        return Warmed(entry.name, loaded - started, done - loaded, f"{width}x{height}, {count}")

    # ------------------------------------------------------------------ planning

    @staticmethod
    def _input_frames(spec: RenderSpec) -> int:
        """Input frames the output starts with: an extension's (an edit replaces its input)."""
        if spec.mode is not Mode.EXTENSION or spec.input_video is None:
            return 0
        return spec.input_video.num_frames

    def _plan(self, spec: RenderSpec, model: str, entry: PipelineEntry) -> _Plan:
        if spec.fps != FPS:
            raise EngineError(f"The diffusers engine writes {FPS} fps video only.")
        follow = entry
        if "extension" not in entry.modes():
            follow = self.registry.pipeline_for(model, "extension") or entry
        width, height = video.generation_size(
            spec.width, spec.height, entry.multiple, entry.max_area, entry.size
        )
        new = spec.num_frames - self._input_frames(spec)
        if new <= 0:
            raise EngineError("The requested video has no frames to generate.")
        extension = spec.mode is Mode.EXTENSION
        need = video.frames_needed(new + (1 if extension else 0), entry.fps)
        first = need if extension else 0  # an extension starts with a continuation chunk
        chunks = 1
        if not extension:
            first = min(
                video.model_frame_count(need, entry.frames_per_latent), _largest_valid(entry)
            )
        have = 1 if extension else first
        step = _largest_valid(follow) - context_count(follow)
        if have < need:
            if "extension" not in follow.modes():
                raise EngineError(
                    f"{need} frames at {entry.fps} fps are longer than {entry.name} makes at once "
                    f"({entry.max_frames}) and no pipeline that continues a video is configured "
                    f"for {model}."
                )
            if follow.fps != entry.fps:
                raise EngineError(
                    f"The continuation pipeline {follow.name} runs at {follow.fps} fps, "
                    f"{entry.name} at {entry.fps}: configure pipelines of the same rate."
                )
            chunks += math.ceil((need - have) / max(1, step))
        return _Plan(entry, follow, width, height, need, chunks)

    # ------------------------------------------------------------------ generation

    def _conditioning(self, spec: RenderSpec, plan: _Plan) -> Conditioning:
        size = (plan.width, plan.height)
        cond = Conditioning()
        if spec.first_frame is not None:
            cond.first = fit_image(spec.first_frame, *size)
        if spec.last_frame is not None and spec.mode is Mode.INTERPOLATION:
            cond.last = fit_image(spec.last_frame, *size)
        if spec.mode is Mode.REFERENCES:
            cond.references = spec.reference_images
        if spec.mode is Mode.EXTENSION:
            cond.context = self._input_context(spec, plan)
        return cond

    def _input_context(self, spec: RenderSpec, plan: _Plan) -> list[np.ndarray]:
        """The input video's last frames, spaced at the model's rate, at the generation size."""
        source = spec.input_video
        assert source is not None
        count = context_count(plan.follow)
        wanted = video.sample_times(count, plan.entry.fps, source.fps, source.num_frames)
        picked: dict[int, np.ndarray] = {}
        for index, frame in enumerate(iter_video_frames(source.path)):
            if index in wanted:
                picked[index] = fit_image(frame, plan.width, plan.height)
        if not picked:
            raise EngineError("The input video has no frames to continue from.")
        last = picked[max(picked)]
        return [picked.get(i, last) for i in wanted]

    def _generate(self, spec: RenderSpec, plan: _Plan, progress: ProgressFn) -> list[np.ndarray]:
        """Model frames on one timeline: frame 0 is the anchor the output's times start from."""
        cond = self._conditioning(spec, plan)
        final_last = cond.last
        timeline: list[np.ndarray] = []
        if spec.mode is Mode.EXTENSION:
            timeline = [cond.context[-1]]
        chunk = 0
        while chunk == 0 or len(timeline) < plan.need:
            entry = plan.entry if chunk == 0 and spec.mode is not Mode.EXTENSION else plan.follow
            if chunk > 0 or spec.mode is Mode.EXTENSION:
                ctx = context_count(entry)
                cond = Conditioning(context=timeline[-ctx:] if chunk else cond.context)
                remaining = plan.need - len(timeline)
                count = min(
                    video.model_frame_count(remaining + len(cond.context), entry.frames_per_latent),
                    _largest_valid(entry),
                )
                if len(timeline) + count - len(cond.context) >= plan.need:
                    cond.last = final_last  # the last chunk ends on the requested last frame
            else:
                count = min(
                    video.model_frame_count(plan.need, entry.frames_per_latent),
                    _largest_valid(entry),
                )
                if count < plan.need:
                    cond.last = None  # later chunks carry the last frame
            frames = self._call(spec, plan, entry, cond, count, chunk, progress)
            self._keep_audio(spec, plan, entry, len(timeline), len(cond.context), chunk)
            timeline.extend(self._join(timeline, frames, len(cond.context)))
            chunk += 1
        return timeline

    def _keep_audio(
        self,
        spec: RenderSpec,
        plan: _Plan,
        entry: PipelineEntry,
        before: int,
        overlap: int,
        chunk: int,
    ) -> None:
        """Place the soundtrack the last call returned (LTX-2) on the output's time axis.
        Chunk frame k is timeline frame `before - overlap + k`; the timeline starts at 0, or
        for an extension at the input's last frame (its anchor)."""
        if plan.heard is None:
            return
        waveform, rate = plan.heard
        plan.heard = None
        inputs = self._input_frames(spec)
        base = (inputs - 1) / FPS if inputs else 0.0
        offset = base + (before - overlap) / entry.fps
        cut = base + before / entry.fps if chunk else inputs / FPS
        plan.sound.append((sound.to_stereo_48k(waveform, rate), offset, cut))
        plan.sound_by = entry.cls

    @staticmethod
    def _join(
        timeline: list[np.ndarray], frames: list[np.ndarray], overlap: int
    ) -> list[np.ndarray]:
        """The new frames of a chunk; where it overlaps the timeline, cross-fade into it."""
        shared = min(overlap, len(timeline))
        for i in range(1, shared):  # the first shared frame stays the previous chunk's
            at = len(timeline) - shared + i
            timeline[at] = video.cross_fade(timeline[at], frames[overlap - shared + i], i / shared)
        return frames[overlap:]

    def _call(
        self,
        spec: RenderSpec,
        plan: _Plan,
        entry: PipelineEntry,
        cond: Conditioning,
        count: int,
        chunk: int,
        progress: ProgressFn,
    ) -> list[np.ndarray]:
        import torch

        pipe = self.cache.for_entry(entry)
        width, height = plan.width, plan.height
        if cond.context and cond.context[0].shape[:2] != (height, width):
            cond.context = [fit_image(f, width, height) for f in cond.context]

        def on_step(pipeline: Any, step: int, _timestep: Any, _kwargs: dict) -> dict:
            total = getattr(pipeline, "num_timesteps", 0) or entry.steps
            done = (chunk + min(1.0, (step + 1) / total)) / plan.chunks
            progress(GENERATION_SHARE * done)  # raises Cancelled: aborts at this step
            return {}

        kwargs = call_kwargs(
            entry,
            cond,
            prompt=camera_prompt(spec.prompt, spec.camera_control),
            negative_prompt=spec.negative_prompt,
            width=width,
            height=height,
            num_frames=count,
            generator=torch.Generator("cpu").manual_seed((spec.seed + chunk) % 2**63),
            callback=on_step,
        )
        with recipe(pipe, entry), torch.inference_mode():
            if entry.family == "Wan" and entry.guidance_scale > 1.0:
                out = self._call_with_paired_guidance(pipe, kwargs)
            else:
                out = pipe(**kwargs)
        if entry.native_audio:
            plan.heard = model_audio(pipe, out)
        frames = video.to_uint8(np.asarray(out.frames[0]))
        del out
        return [np.ascontiguousarray(f) for f in frames]

    @staticmethod
    def _call_with_paired_guidance(pipe: Any, kwargs: dict[str, Any]) -> Any:
        """A Wan call with both guidance halves in one batched forward per step."""
        prompt_embeds, negative_embeds = encode_prompts(
            pipe, kwargs.pop("prompt"), kwargs.pop("negative_prompt")
        )
        kwargs.update(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds)
        with paired_guidance(pipe, negative_embeds):
            return pipe(**kwargs)

    # ------------------------------------------------------------------ masked editing

    def _edit(
        self, spec: RenderSpec, plan: _Plan, edit: editing.EditPlan, progress: ProgressFn
    ) -> list[np.ndarray]:
        """VACE's frames for the whole input, in windows of the most frames the pipeline makes
        at once; each window after the first starts on the last frames made (kept whole)."""
        entry = plan.entry
        size = (plan.width, plan.height)
        video_in, masks = editing.conditioning(spec, edit, entry.fps, plan.need, size)
        timeline: list[np.ndarray] = []
        chunk = 0
        while len(timeline) < plan.need:
            overlap = min(context_count(entry), len(timeline)) if chunk else 0
            start = len(timeline) - overlap
            count = min(
                video.model_frame_count(plan.need - start, entry.frames_per_latent),
                _largest_valid(entry),
            )
            picks = [min(i, plan.need - 1) for i in range(start, start + count)]
            cond = Conditioning(
                video=timeline[start:] + [video_in[i] for i in picks[overlap:]],
                masks=[np.zeros_like(masks[0])] * overlap + [masks[i] for i in picks[overlap:]],
            )
            frames = self._call(spec, plan, entry, cond, count, chunk, progress)
            timeline.extend(self._join(timeline, frames, overlap))
            chunk += 1
        return timeline[: plan.need]

    def _edited(
        self,
        spec: RenderSpec,
        plan: _Plan,
        edit: editing.EditPlan,
        timeline: list[np.ndarray],
        progress: ProgressFn,
    ) -> Iterator[np.ndarray]:
        """The output: VACE's frames at 24 fps and the output size inside each frame's hole,
        the source's pixels, exactly, outside it."""
        where = video.positions(spec.num_frames, plan.entry.fps)
        made = video.resample(timeline, where)
        feather = editing.feather_of(spec)
        pairs = editing.sources_and_holes(spec, edit)
        for index, ((source, hole), frame) in enumerate(zip(pairs, made, strict=True)):
            progress(GENERATION_SHARE + (1 - GENERATION_SHARE) * index / spec.num_frames)
            full = video.fit_frame(frame, spec.width, spec.height)
            yield editing.composite(source, full, hole, feather)

    @staticmethod
    def _edit_notes(spec: RenderSpec, plan: _Plan, edit: editing.EditPlan) -> dict[str, object]:
        return {
            "mask_mode": edit.mode,
            "edit": (
                f"masked video-to-video by Wan VACE ({plan.entry.cls}): {edit.note}; "
                "the pixels outside the mask are the input's"
            ),
            "resize": f"{plan.width}x{plan.height} -> {spec.width}x{spec.height}",
        }

    # ------------------------------------------------------------------ output

    def _output(
        self,
        spec: RenderSpec,
        plan: _Plan,
        timeline: list[np.ndarray],
        new: int,
        progress: ProgressFn,
    ) -> Iterator[np.ndarray]:
        """Input frames (extension), then the new ones at 24 fps and the exact size."""
        total = spec.num_frames
        produced = 0
        if spec.input_video is not None:
            for frame in iter_video_frames(spec.input_video.path):
                if produced == spec.input_video.num_frames:
                    break
                yield fit_image(frame, spec.width, spec.height)
                produced += 1
        rate = plan.entry.fps / FPS
        where: np.ndarray
        if spec.mode is Mode.INTERPOLATION:  # end exactly on the requested last frame
            where = np.linspace(0.0, len(timeline) - 1, new)
        elif spec.mode is Mode.EXTENSION:
            where = (np.arange(new) + 1) * rate
        else:
            where = np.arange(new) * rate
        upscaler = self._upscaler(spec, plan)
        for frame in video.resample(timeline, where):
            progress(GENERATION_SHARE + (1 - GENERATION_SHARE) * produced / total)
            yield upscaler(frame) if upscaler else video.fit_frame(frame, spec.width, spec.height)
            produced += 1

    def _upscaler(self, spec: RenderSpec, plan: _Plan):  # noqa: ANN202 - a frame function
        """A configured upscaler pipeline, frame by frame, for 1080p / 4k; else None."""
        aux = self.registry.upscaler
        if aux is None or not self._upscales(spec, plan):
            return None

        def upscale(frame: np.ndarray) -> np.ndarray:
            from PIL import Image

            with self.cache.lock:
                pipe = self.cache.get(aux.cls, aux.path)
                out = pipe(
                    prompt=spec.prompt,
                    image=Image.fromarray(frame),
                    num_inference_steps=aux.steps,
                    output_type="np",
                    # Every frame from the same seed: the same noise on each (no flicker from
                    # it), and each sample's from its own seed.
                    **seeded(pipe, spec.seed),
                    **aux.call,
                )
            image = video.to_uint8(np.asarray(out.images[0]))
            return video.fit_frame(image, spec.width, spec.height)

        return upscale

    @staticmethod
    def _upscales(spec: RenderSpec, plan: _Plan) -> bool:
        return spec.width * spec.height > UPSCALE_THRESHOLD * plan.width * plan.height

    def _native(self, spec: RenderSpec, plan: _Plan) -> tuple[np.ndarray, dict[str, object]] | None:
        """The model's own soundtrack (LTX-2), exactly the clip's length; an extension keeps
        the input's audio for the input's part and cross-fades into the model's for the new
        part (the pipelines take no audio to continue from)."""
        if not plan.sound:
            return None
        total = int(round(spec.num_frames / spec.fps * AUDIO_RATE))
        extension = spec.mode is Mode.EXTENSION and spec.input_video is not None
        start = input_audio(spec) if extension else np.zeros((0, 2), np.float32)
        track = fit_length(sound.stitch(start, plan.sound), total)
        if sound.is_silent(track[len(start) :]):
            return None
        note = sound.native_note(plan.sound_by)
        if extension:
            note += (
                "; the input's own audio plays to its end, cross-faded over "
                f"{int(sound.SPLICE_SECONDS * 1000)} ms into the model's for the new part"
            )
        return track, {"audio": note}

    def _audio(self, spec: RenderSpec, plan: _Plan) -> tuple[np.ndarray, dict[str, object]]:
        native = self._native(spec, plan)
        if native is not None:
            return native
        seconds = spec.num_frames / spec.fps
        aux = self.registry.audio
        if aux is not None:
            pipe = self.cache.get(aux.cls, aux.path)
            new_seconds = seconds - self._input_frames(spec) / spec.fps
            track = sound.from_pipeline(pipe, spec, new_seconds, aux.steps, aux.call)
            if not sound.is_silent(track):
                total = int(round(seconds * AUDIO_RATE))
                if spec.mode is Mode.EXTENSION:
                    track = np.concatenate([input_audio(spec), track])
                return fit_length(track, total), {"audio": f"text-to-audio: {aux.cls}"}
            note = f"procedural soundtrack from the preview engine ({aux.cls} returned silence)"
            return sound.procedural(spec), {"audio": note}
        return sound.procedural(spec), {"audio": sound.PROCEDURAL}

    # ------------------------------------------------------------------ metadata

    def _notes(
        self, spec: RenderSpec, plan: _Plan, timeline: list[np.ndarray], track: Any
    ) -> dict[str, object]:
        entry = plan.entry
        notes: dict[str, object] = {
            "engine": self.name,
            "mode": spec.mode.value,
            "pipeline": entry.cls,
            "checkpoint": entry.path,
            "generated_size": f"{plan.width}x{plan.height}",
            "model_fps": entry.fps,
            "model_frames": len(timeline),
            "chunks": plan.chunks,
            "steps": entry.steps,
            "guidance_scale": entry.guidance_scale,
            "frame_rate_conversion": "none (native 24 fps)"
            if entry.fps == FPS
            else f"optical-flow motion interpolation {entry.fps} -> 24 fps",
        }
        if self._upscales(spec, plan):
            aux = self.registry.upscaler
            notes["upscaler"] = f"pipeline: {aux.cls}" if aux else "lanczos resampler (cv2)"
        else:
            notes["resize"] = f"{plan.width}x{plan.height} -> {spec.width}x{spec.height}"
        if not spec.audio:
            notes["audio"] = "none"
        notes.update(camera_note(spec.camera_control))
        return notes

    @staticmethod
    def _oom_message(plan: _Plan, spec: RenderSpec) -> str:
        return (
            f"The device ran out of memory generating {plan.width}x{plan.height} "
            f"frames with {plan.entry.cls} for this {spec.mode.value} request. Try a shorter or "
            "smaller video, or set CINEGEN_DIFFUSERS_OFFLOAD=model and "
            "CINEGEN_DIFFUSERS_VAE_TILING=true."
        )
