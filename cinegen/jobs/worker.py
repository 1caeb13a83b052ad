"""Run one job: decode the inputs, call the engine per sample, encode, store, finish.

`run_job` is the single unit of work, whether a thread of this process or (for scale-out) a
separate worker process calls it. It only trusts the database: the operation row says what to
do, and a cancel flag in that row stops it at the engine's next progress report. Everything it
reads and writes goes through the service.

It holds the operation under a lease (`OperationService.claim`), renewed by every progress
write and by the encode and store steps. Each of those writes is guarded by the lease: when
one matches nothing, the operation ended, was deleted, or another worker took it over after
the lease expired; the job then stops (`LeaseLost`), discards what it wrote, and writes
nothing more.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from cinegen.core import catalog, metrics
from cinegen.core.errors import Cancelled, CinegenError, DeadlineExceeded, Internal
from cinegen.core.operation import Operation, Sample
from cinegen.core.request import GenerateRequest, MediaRef, Mode
from cinegen.core.tracing import job_scope, job_started, traced
from cinegen.engines.base import Engine, InputVideo, RenderSpec
from cinegen.media import decode, people
from cinegen.media.clip import FPS, Clip
from cinegen.media.encode import encode_clip
from cinegen.media.provenance import provenance_tags
from cinegen.service.codec import request_from_json
from cinegen.service.credentials import sign_sample
from cinegen.service.files import new_id
from cinegen.service.operations import OperationService
from cinegen.service.watermarks import SampleMarker
from cinegen.store.blobs import is_storage_full
from cinegen.store.db import FileRecord, is_unavailable

log = logging.getLogger("cinegen.worker")

_PROGRESS_WRITE_INTERVAL = 0.25  # seconds between progress rows / cancel checks
_PROGRESS_WRITE_STEP = 10.0  # percent: a fast job still shows its progress move
_SEED_STEP = 0x9E3779B1  # golden-ratio stride: distinct, well-spread seeds per sample
# Engines whose pictures are no people by construction: the person check is skipped for them
# (README "Safety: people and prompts": the preview engine draws shapes and gradients).
DRAWS_NO_PEOPLE = frozenset({"preview"})
_CRASHED = "Internal error while generating the video. The server log has details."
# Waits (seconds) before each new try of a job's final write: a full disk, a busy or briefly
# unreachable database. Past them the lease expires and the watchdog ends the job.
FINAL_WRITE_RETRIES = (0.5, 1.0, 2.0, 4.0)


def sample_seed(seed: int, index: int) -> int:
    """Sample 0 uses the request's seed; the others derive from it, reproducibly."""
    return (seed + index * _SEED_STEP) % 2**32


@dataclass
class JobContext:
    service: OperationService
    engines: dict[str, Engine]


class LeaseLost(Cancelled):
    """The operation is no longer this worker's: it stops and writes nothing more. A kind of
    `Cancelled`, so that an engine stops on it as on a cancel (and frees what it holds)."""

    def __init__(self) -> None:
        super().__init__("The operation is no longer leased to this worker.")


class _Progress:
    """Maps an engine's per-sample fraction to the operation's percent, throttled; every
    write renews the lease. A job past its time limit (`job_timeout_seconds`, counted from
    when this worker took it) is stopped at the engine's next report: DEADLINE_EXCEEDED."""

    def __init__(self, service: OperationService, op_id: str, samples: int) -> None:
        self.service = service
        self.op_id = op_id
        self.samples = samples
        self.index = 0
        self.last_progress = 0.0  # the last progress write (throttles progress reports)
        self.last_percent = 0.0
        self.last_write = 0.0  # the last write of any kind: each renews the lease
        self.timeout = service.settings.job_timeout_seconds
        self.deadline = time.monotonic() + self.timeout if self.timeout > 0 else None

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise DeadlineExceeded(
                f"The video took longer than this server's limit of {self.timeout:g} seconds "
                "per job (CINEGEN_JOB_TIMEOUT_SECONDS) and was stopped. Ask for fewer "
                "seconds, a lower resolution or fewer samples, or try again later."
            )
        percent = 100.0 * (self.index + min(max(fraction, 0.0), 1.0)) / self.samples
        recent = now - self.last_progress < _PROGRESS_WRITE_INTERVAL
        if recent and percent - self.last_percent < _PROGRESS_WRITE_STEP:
            return
        self.last_progress = self.last_write = now
        self.last_percent = percent
        if self.service.cancel_requested(self.op_id):
            raise Cancelled()
        if not self.service.report_progress(self.op_id, percent):
            raise LeaseLost()

    def keep_alive(self) -> None:
        """Renew the lease during steps that report no progress (encode, store). It has a
        clock of its own: the encoder runs beside the render, and a renewal must not use up
        the render's next progress report."""
        now = time.monotonic()
        if now - self.last_write < _PROGRESS_WRITE_INTERVAL:
            return
        self.last_write = now
        if not self.service.renew(self.op_id):
            raise LeaseLost()

    def encoded(self, _fraction: float) -> None:
        """The encoder's progress: renews the lease while frames are encoded."""
        self.keep_alive()


@job_scope
def run_job(op_id: str, ctx: JobContext) -> None:
    service = ctx.service
    op = service.claim(op_id)
    if op is None:
        return
    job_started(op)
    if op.attempts > 1:  # a run that died after storing a video left it; not this run's
        _discard(service, service.files.live_files(op_id))
    if service.cancel_requested(op_id):
        _final_write(op_id, partial(service.finish_cancelled, op_id))
        return
    written: list[FileRecord] = []
    timing = _EngineClock()
    try:
        samples, notes = _render_all(op, ctx, written, timing)
    except LeaseLost:
        _discard(service, written)
        log.warning("operation %s: lease lost (ended, deleted or taken over); stopped", op_id)
        return
    except Cancelled:
        _discard(service, written)
        _final_write(op_id, partial(service.finish_cancelled, op_id))
        log.info("operation %s cancelled", op_id)
        return
    except CinegenError as exc:
        _discard(service, written)
        _final_write(op_id, partial(service.finish_failed, op_id, exc))
        log.warning("operation %s failed (%s): %s", op_id, exc.status, exc.message)
        return
    except Exception as exc:
        _discard(service, written)
        if is_unavailable(exc) and not is_storage_full(exc):  # runs again when its lease ends
            log.warning("operation %s: the database went away mid-job; stopped", op_id)
            return
        log.exception("operation %s crashed", op_id)
        _final_write(op_id, partial(service.finish_failed, op_id, Internal(_CRASHED)))
        return
    finished = _final_write(
        op_id,
        partial(
            service.finish_succeeded,
            op_id,
            samples,
            {**op.notes, **notes},
            op,
            timing.seconds,
            timing.filtered,
        ),
    )
    if finished is False:
        # cancelled, deleted or taken over while encoding the last frames; or never written
        _discard(service, _not_kept(service, op_id, written))


def _discard(service: OperationService, written: list[FileRecord]) -> None:
    """Free the files of a job that did not succeed; a failure here (the orphan sweep
    deletes them later) must not keep the job from ending."""
    try:
        service.files.discard(written)
    except Exception:
        log.exception("deleting the files of a failed job failed; the orphan sweep will")


def _not_kept(service: OperationService, op_id: str, written: list[FileRecord]) -> list[FileRecord]:
    """The files the operation's row does not point at: a retried final write that had
    landed before it raised answers False too, and its files must stay."""
    try:
        ended = service.db.get_operation(op_id)
    except Exception:
        log.exception("operation %s: reading its end failed; its files are kept", op_id)
        return []
    kept = {sample.file_id for sample in ended.samples} if ended is not None else set()
    return [record for record in written if record.id not in kept]


def _final_write(op_id: str, write: Callable[[], bool]) -> bool:
    """The write that ends a job, tried again after `FINAL_WRITE_RETRIES` waits when it
    raises (a full disk, a busy database), since a job whose end is never written stays
    RUNNING until its lease expires. Every such write is guarded by the lease, so a try
    that did land and raised afterwards makes the next try a no-op. False when all failed."""
    for wait in (*FINAL_WRITE_RETRIES, None):
        try:
            return write()
        except Exception:
            if wait is None:
                log.exception(
                    "operation %s: its final state could not be written; the lease watchdog "
                    "will end it",
                    op_id,
                )
                return False
            log.warning(
                "operation %s: writing its final state failed; again in %s s",
                op_id,
                wait,
                exc_info=True,
            )
            time.sleep(wait)
    return False


@dataclass
class _EngineClock:
    """Engine time of a job for usage metering: the wall time of each sample's render and
    encode together (the encoder pulls the engine's frames, so the two overlap); and the
    samples dropped for showing people (rendered, never stored nor charged)."""

    seconds: float = 0.0
    filtered: int = 0


def _render_all(
    op: Operation, ctx: JobContext, written: list[FileRecord], timing: _EngineClock
) -> tuple[list[Sample], dict[str, object]]:
    req = request_from_json(op.request)
    engine = ctx.engines[ctx.service.catalog.engine_for(req.model)]
    progress = _Progress(ctx.service, op.id, req.sample_count or 1)
    samples: list[Sample] = []
    stopwatch = metrics.JobTimings(engine.name, str(req.mode), req.resolution or "720p")
    notes: dict[str, object] = {"engine": engine.name, "seed": op.seed}
    if req.enhance_prompt and not getattr(engine, "prompt_enhancer", False):
        notes["enhancePrompt"] = (
            f"requested, but the {engine.name} engine has no prompt enhancer: "
            "the prompt was used as given"
        )
    screen = req.person_generation == "dont_allow" and engine.name not in DRAWS_NO_PEOPLE
    with tempfile.TemporaryDirectory(prefix="cinegen-") as scratch:
        base_spec = _render_spec(req, ctx, op.seed, Path(scratch))
        mark = SampleMarker(ctx.service, op)  # README "Invisible watermark"
        progress.keep_alive()
        for index in range(req.sample_count or 1):
            progress.index = index
            stopwatch.lap()
            seed = sample_seed(op.seed, index)
            started = time.perf_counter()
            render = traced("cinegen.engine.render")(engine.render)
            clip = render(replace(base_spec, seed=seed), progress)
            looked_at = _watch_for_people(clip) if screen else None
            notes.update({k: v for k, v in clip.notes.items() if isinstance(v, str | int | float)})
            stopwatch.rendered()
            clip = mark(index, seed, clip)
            file_id = new_id()
            out = Path(scratch) / f"{file_id}.mp4"
            encoded = traced("cinegen.encode")(encode_clip)(
                clip,
                str(out),
                quality=req.compression_quality or "optimized",
                metadata=provenance_tags(engine.name, req.model, seed),
                progress=progress.encoded,
            )
            encoded = sign_sample(ctx.service.settings, encoded, engine.name, base_spec, seed)
            stopwatch.encoded()
            timing.seconds += time.perf_counter() - started
            progress.keep_alive()
            if looked_at is not None and _filtered_for_people(looked_at, timing, progress):
                continue
            record = traced("cinegen.store")(ctx.service.files.store_video)(
                operation_id=op.id, owner=op.owner, file_id=file_id, source=out
            )
            written.append(record)
            stopwatch.stored()
            progress.keep_alive()
            if req.storage_uri:
                ctx.service.inputs.export_sample(req.storage_uri, op.id, index, record)
                progress.keep_alive()
            samples.append(
                Sample(
                    file_id=file_id,
                    seed=seed,
                    size_bytes=encoded.size_bytes,
                    duration_seconds=encoded.duration_seconds,
                )
            )
    stopwatch.done()
    return samples, notes


def _watch_for_people(clip: Clip) -> people.FrameSampler:
    """personGeneration `dont_allow`: keep a few of the clip's frames as the encoder pulls
    them, for `_filtered_for_people`."""
    sampler = people.FrameSampler(clip.frames, clip.num_frames)
    clip.frames = iter(sampler)
    return sampler


def _filtered_for_people(
    looked_at: people.FrameSampler, timing: _EngineClock, progress: _Progress
) -> bool:
    """Whether the sample shows a person (media/people.py) and is dropped, as Veo filters
    it: counted in the operation's raiMediaFilteredCount, with fewer samples."""
    found = traced("cinegen.people")(people.shows_person)(looked_at.kept)
    progress.keep_alive()
    if found:
        timing.filtered += 1
        metrics.sample_filtered("person")
    return found


def _load_image(ctx: JobContext, ref: MediaRef | None, size: tuple[int, int]) -> np.ndarray | None:
    """The input decoded no larger than needed to be fitted to `size` (decode_image's `fit`)."""
    if ref is None:
        return None
    return decode.decode_image(ctx.service.inputs.read(ref), fit=size)


def _load_mask(ctx: JobContext, ref: MediaRef | None, size: tuple[int, int]) -> np.ndarray | None:
    """An edit's mask fitted to the output size as frames are; white (any channel over half
    grey) marks the region."""
    if ref is None:
        return None
    image = decode.decode_image(ctx.service.inputs.read(ref), fit=size)
    return decode.fit_image(image, *size).max(axis=2) > 127


def _render_spec(req: GenerateRequest, ctx: JobContext, seed: int, scratch: Path) -> RenderSpec:
    aspect = req.aspect_ratio or "16:9"
    width, height = catalog.frame_size(req.resolution or "720p", aspect)
    num_frames = (req.duration_seconds or 8) * FPS
    input_video = None
    if req.mode in (Mode.EXTENSION, Mode.EDIT) and req.video is not None:
        path = ctx.service.inputs.copy_to(req.video, scratch / "input.mp4")
        info = decode.probe_video(str(path))
        input_video = InputVideo(
            path=str(path),
            width=info.width,
            height=info.height,
            num_frames=info.num_frames,
            fps=info.fps,
            has_audio=info.has_audio,
        )
        width, height = info.width, info.height
        num_frames = info.num_frames + (
            catalog.EXTENSION_SECONDS * FPS if req.mode == Mode.EXTENSION else 0
        )  # an edit is as long as its input
    first = _load_image(ctx, req.image, (width, height))
    last = _load_image(ctx, req.last_frame, (width, height))
    refs = tuple(
        decode.decode_image(ctx.service.inputs.read(r.image), fit=(width, height))
        for r in req.reference_images
    )
    fit = decode.pad_image if req.resize_mode == "pad" else decode.fit_image
    return RenderSpec(
        mode=req.mode,
        prompt=req.prompt or "",
        negative_prompt=req.negative_prompt or "",
        width=width,
        height=height,
        fps=FPS,
        num_frames=num_frames,
        seed=seed,
        audio=bool(req.generate_audio),
        # resizeMode acts on the frames only: reference images are not frames of the video but
        # appearances to keep, so they are fitted as before.
        first_frame=fit(first, width, height) if first is not None else None,
        last_frame=fit(last, width, height) if last is not None else None,
        reference_images=refs,
        reference_types=tuple(r.reference_type for r in req.reference_images),
        input_video=input_video,
        mask=_load_mask(ctx, req.mask, (width, height)),
        mask_mode=req.mask_mode or "",
        model=req.model,
        camera_control=req.camera_control,
    )
