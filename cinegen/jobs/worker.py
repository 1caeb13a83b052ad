"""Run one job: decode the inputs, call the engine per sample, encode, store, finish.

`run_job` is the single unit of work, whether a thread of this process or (for scale-out) a
separate worker process calls it. It only trusts the database: the operation row says what to
do, and a cancel flag in that row stops it at the engine's next progress report.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cinegen.core import catalog
from cinegen.core.errors import (
    Cancelled,
    CinegenError,
    InputUnavailable,
    RpcCode,
    StorageError,
)
from cinegen.core.operation import Operation, Sample, State
from cinegen.core.request import GenerateRequest, MediaRef, Mode
from cinegen.engines.base import Engine, InputVideo, RenderSpec
from cinegen.media import decode
from cinegen.media.clip import FPS
from cinegen.media.encode import encode_clip
from cinegen.media.provenance import provenance_tags
from cinegen.service.codec import request_from_json
from cinegen.service.operations import CANCELLED_MESSAGE, OperationService, new_id
from cinegen.store.db import FileRecord, utcnow
from cinegen.store.gcs import GcsError, sample_uri

log = logging.getLogger("cinegen.worker")

_PROGRESS_WRITE_INTERVAL = 0.25  # seconds between progress rows / cancel checks
_SEED_STEP = 0x9E3779B1  # golden-ratio stride: distinct, well-spread seeds per sample


def sample_seed(seed: int, index: int) -> int:
    """Sample 0 uses the request's seed; the others derive from it, reproducibly."""
    return (seed + index * _SEED_STEP) % 2**32


@dataclass
class JobContext:
    service: OperationService
    engines: dict[str, Engine]


class _Progress:
    """Maps an engine's per-sample fraction to the operation's percent, throttled."""

    def __init__(self, ctx: JobContext, op_id: str, samples: int) -> None:
        self.ctx = ctx
        self.op_id = op_id
        self.samples = samples
        self.index = 0
        self.last_write = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last_write < _PROGRESS_WRITE_INTERVAL:
            return
        self.last_write = now
        db = self.ctx.service.db
        if db.cancel_requested(self.op_id):
            raise Cancelled()
        percent = 100.0 * (self.index + min(max(fraction, 0.0), 1.0)) / self.samples
        db.update_operation(self.op_id, progress=round(min(percent, 99.0), 1))


def run_job(op_id: str, ctx: JobContext) -> None:
    db = ctx.service.db
    op = db.claim_operation(op_id)
    if op is None:
        return
    if db.cancel_requested(op_id):
        db.finish_operation(
            op_id, State.CANCELLED, error_code=RpcCode.CANCELLED, error_message=CANCELLED_MESSAGE
        )
        return
    written: list[FileRecord] = []
    try:
        samples, notes = _render_all(op, ctx, written)
    except Cancelled:
        _discard(ctx, written)
        db.finish_operation(
            op_id, State.CANCELLED, error_code=RpcCode.CANCELLED, error_message=CANCELLED_MESSAGE
        )
        log.info("operation %s cancelled", op_id)
        return
    except CinegenError as exc:
        _discard(ctx, written)
        db.finish_operation(
            op_id, State.FAILED, error_code=exc.rpc_code, error_message=exc.message
        )
        log.warning("operation %s failed (%s): %s", op_id, exc.status, exc.message)
        return
    except Exception:
        _discard(ctx, written)
        log.exception("operation %s crashed", op_id)
        db.finish_operation(
            op_id,
            State.FAILED,
            error_code=RpcCode.INTERNAL,
            error_message="Internal error while generating the video. The server log has details.",
        )
        return
    if not db.finish_operation(
        op_id, State.SUCCEEDED, samples=samples, progress=100.0, notes={**op.notes, **notes}
    ):
        _discard(ctx, written)  # cancelled or deleted while encoding the last frames


def _render_all(
    op: Operation, ctx: JobContext, written: list[FileRecord]
) -> tuple[list[Sample], dict[str, object]]:
    req = request_from_json(op.request)
    engine = ctx.engines[
        catalog.MODELS[req.model].engine if req.model in catalog.MODELS else "preview"
    ]
    progress = _Progress(ctx, op.id, req.sample_count or 1)
    samples: list[Sample] = []
    notes: dict[str, object] = {"engine": engine.name, "seed": op.seed}
    if req.enhance_prompt and not getattr(engine, "prompt_enhancer", False):
        notes["enhancePrompt"] = (
            f"requested, but the {engine.name} engine has no prompt enhancer: "
            "the prompt was used as given"
        )
    with tempfile.TemporaryDirectory(prefix="cinegen-") as scratch:
        base_spec = _render_spec(req, ctx, op.seed, Path(scratch))
        for index in range(req.sample_count or 1):
            progress.index = index
            seed = sample_seed(op.seed, index)
            spec = _with_seed(base_spec, seed)
            clip = engine.render(spec, progress)
            notes.update({k: v for k, v in clip.notes.items() if isinstance(v, str | int | float)})
            file_id = new_id()
            out = Path(scratch) / f"{file_id}.mp4"
            encoded = encode_clip(
                clip,
                str(out),
                quality=req.compression_quality or "optimized",
                metadata=provenance_tags(engine.name, req.model, seed),
            )
            record = _store_video(ctx, op, file_id, out, encoded.size_bytes)
            written.append(record)
            if req.storage_uri:
                _export_to_gcs(ctx, req.storage_uri, op.id, index, record)
            samples.append(
                Sample(
                    file_id=file_id,
                    seed=seed,
                    size_bytes=encoded.size_bytes,
                    duration_seconds=encoded.duration_seconds,
                )
            )
    return samples, notes


def _with_seed(spec: RenderSpec, seed: int) -> RenderSpec:
    from dataclasses import replace

    return replace(spec, seed=seed)


def _store_video(ctx: JobContext, op: Operation, file_id: str, path: Path, size: int) -> FileRecord:
    key = f"videos/{file_id}.mp4"
    ctx.service.blobs.put_file(key, path)
    now = utcnow()
    record = FileRecord(
        id=file_id,
        operation_id=op.id,
        owner=op.owner,
        blob_key=key,
        mime_type="video/mp4",
        size_bytes=size,
        create_time=now,
        expire_time=ctx.service.expire_time_from(now),
        deleted=False,
    )
    ctx.service.db.insert_file(record)
    return record


def _export_to_gcs(
    ctx: JobContext, storage_uri: str, op_id: str, index: int, record: FileRecord
) -> None:
    """Vertex `storageUri`: a copy of the sample goes to `<storageUri>/<op>/sample_<i>.mp4`."""
    if ctx.service.gcs is None:
        raise StorageError("`storageUri` needs a configured GCS store.")
    try:
        ctx.service.gcs.write_file(
            sample_uri(storage_uri, op_id, index), ctx.service.blobs.local_path(record.blob_key)
        )
    except GcsError as exc:
        raise StorageError(str(exc)) from exc


def _discard(ctx: JobContext, written: list[FileRecord]) -> None:
    for record in written:
        ctx.service.blobs.delete(record.blob_key)
        ctx.service.db.mark_file_deleted(record.id)


def _media_path(ctx: JobContext, ref: MediaRef) -> Path:
    if ref.blob_key is not None:
        return ctx.service.blobs.local_path(ref.blob_key)
    if ref.file_id is not None:
        record = ctx.service.db.get_file(ref.file_id)
        if record is None or record.deleted:
            raise InputUnavailable("The input video is no longer available.")
        return ctx.service.blobs.local_path(record.blob_key)
    raise InputUnavailable("The request input could not be found.")


def _load_image(ctx: JobContext, ref: MediaRef | None):  # noqa: ANN202 - ndarray | None
    if ref is None:
        return None
    return decode.decode_image(_media_path(ctx, ref).read_bytes())


def _render_spec(req: GenerateRequest, ctx: JobContext, seed: int, scratch: Path) -> RenderSpec:
    aspect = req.aspect_ratio or "16:9"
    width, height = catalog.frame_size(req.resolution or "720p", aspect)
    num_frames = (req.duration_seconds or 8) * FPS
    input_video = None
    if req.mode == Mode.EXTENSION and req.video is not None:
        path = _media_path(ctx, req.video)
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
        num_frames = info.num_frames + catalog.EXTENSION_SECONDS * FPS
    first = _load_image(ctx, req.image)
    last = _load_image(ctx, req.last_frame)
    refs = tuple(
        decode.decode_image(_media_path(ctx, r.image).read_bytes()) for r in req.reference_images
    )
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
        first_frame=decode.fit_image(first, width, height) if first is not None else None,
        last_frame=decode.fit_image(last, width, height) if last is not None else None,
        reference_images=refs,
        reference_types=tuple(r.reference_type for r in req.reference_images),
        input_video=input_video,
        model=req.model,
    )
