"""Operations: submit, get, list, cancel, delete, and the files they produced.

This is where a checked request becomes durable: inputs go to the blob store, the operation
row is written as `queued`, and only then is the job handed to the queue. Whatever the
process does next (crash, SIGKILL), the row and its inputs are enough to run it again.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cinegen.core import rules
from cinegen.core.catalog import MAX_EXTENSION_INPUT_SECONDS
from cinegen.core.errors import InvalidArgument, NotFound, RpcCode
from cinegen.core.operation import Operation, State
from cinegen.core.request import GenerateRequest, MediaRef, ReferenceImage
from cinegen.media import decode
from cinegen.media.provenance import read_provenance
from cinegen.service.codec import request_from_json, request_to_json
from cinegen.settings import Settings
from cinegen.store.blobs import BlobStore
from cinegen.store.db import Database, FileRecord, utcnow
from cinegen.store.gcs import GcsError, gcs_store_from_settings, parse_gs_uri

log = logging.getLogger("cinegen.service")

MAX_SEED = 2**32
CANCELLED_MESSAGE = "Operation cancelled."


def new_id() -> str:
    """Lower-case hex: the SDKs cut file ids with `^[a-z0-9]+`, operation ids must be URL-safe."""
    return secrets.token_hex(8)


def is_valid_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c in "0123456789abcdef" for c in value)


@dataclass(frozen=True)
class Page:
    operations: list[Operation]
    next_page_token: str | None


class OperationService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        settings: Settings,
        enqueue: Callable[[str], None],
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.settings = settings
        self.enqueue = enqueue
        self.gcs = gcs_store_from_settings(settings)  # None unless GCS is configured

    # submit -----------------------------------------------------------------------------

    def submit(
        self,
        req: GenerateRequest,
        *,
        owner: str | None,
        api_version: str,
        resource_prefix: str = "",
        notes: dict[str, Any] | None = None,
    ) -> Operation:
        """Check, persist and queue; raise a CinegenError on refusal (nothing kept)."""
        req = rules.check(
            req, api_version=api_version, restricted_region=self.settings.restricted_region
        )
        self._check_storage_uri(req)
        req = self._fetch_gcs_inputs(req)
        self._check_images(req)
        extension_file = self._check_video(req, owner)
        seed = req.seed if req.seed is not None else secrets.randbelow(MAX_SEED)
        now = utcnow()
        op = Operation(
            id=new_id(),
            model=req.model,
            dialect=req.dialect,
            owner=owner,
            state=State.QUEUED,
            create_time=now,
            update_time=now,
            request={},
            seed=seed,
            resource_prefix=resource_prefix,
            notes=dict(notes or {}),
        )
        op.request = request_to_json(self._persist_inputs(op.id, req))
        self.db.insert_operation(op)
        if extension_file is not None:
            self.touch(extension_file)
        self.enqueue(op.id)
        return op

    def remix(
        self,
        op_id: str,
        owner: str | None,
        *,
        prompt: str,
        api_version: str,
        dialect: str = "videos",
        notes: dict[str, Any] | None = None,
    ) -> Operation:
        """A new operation from a stored one's request with a new prompt and the same seed.

        Persisted inputs are read back as bytes so the new operation owns copies of them.
        """
        source = self.get(op_id, owner)

        def copy(ref: MediaRef | None) -> MediaRef | None:
            if ref is None or ref.blob_key is None:
                return ref
            if not self.blobs.exists(ref.blob_key):
                raise InvalidArgument("The inputs of the original video are no longer stored.")
            data = self.blobs.local_path(ref.blob_key).read_bytes()
            return MediaRef(data=data, mime_type=ref.mime_type)

        req = request_from_json(source.request)
        req = req.with_(
            prompt=prompt,
            seed=source.seed,
            image=copy(req.image),
            last_frame=copy(req.last_frame),
            video=copy(req.video),
            reference_images=tuple(
                ReferenceImage(image=copy(r.image), reference_type=r.reference_type)
                for r in req.reference_images
            ),
            webhook=None,
            dialect=dialect,
        )
        return self.submit(req, owner=owner, api_version=api_version, notes=notes)

    def _check_storage_uri(self, req: GenerateRequest) -> None:
        """`storageUri` (Vertex): a `gs://bucket/prefix/` the worker writes the samples to."""
        if req.storage_uri is None:
            return
        try:
            parse_gs_uri(req.storage_uri)
        except GcsError as exc:
            raise InvalidArgument(str(exc)) from exc
        if self.gcs is None:
            raise InvalidArgument(
                "`storageUri` needs a configured GCS store (set CINEGEN_GCS_ENDPOINT or "
                "CINEGEN_GCS_USE_DEFAULT_CREDENTIALS); leave it out to get the video bytes inline."
            )

    def _fetch_gcs_inputs(self, req: GenerateRequest) -> GenerateRequest:
        """Read every `gcsUri` input from the GCS store now, so it is checked and persisted
        like inline bytes (and a later change of the object cannot change the job)."""

        def fetch(ref: MediaRef | None) -> MediaRef | None:
            if ref is None or not ref.gcs_uri or ref.data is not None:
                return ref
            if self.gcs is None:
                raise InvalidArgument("`gcsUri` inputs need a configured GCS store.")
            try:
                return MediaRef(data=self.gcs.read(ref.gcs_uri), mime_type=ref.mime_type)
            except GcsError as exc:
                raise InvalidArgument(str(exc)) from exc

        return req.with_(
            image=fetch(req.image),
            last_frame=fetch(req.last_frame),
            video=fetch(req.video),
            reference_images=tuple(
                ReferenceImage(image=fetch(r.image), reference_type=r.reference_type)
                for r in req.reference_images
            ),
        )

    def _check_images(self, req: GenerateRequest) -> None:
        images: list[MediaRef] = [m for m in (req.image, req.last_frame) if m is not None]
        images += [r.image for r in req.reference_images]
        for image in images:
            if image.gcs_uri:
                raise InvalidArgument("`gcsUri` inputs need a configured GCS store.")
            if image.data is None:
                continue
            if len(image.data) > rules.MAX_IMAGE_BYTES:
                raise rules.image_too_large(len(image.data))
            try:
                decode.decode_image(image.data)
            except decode.MediaError as exc:
                raise InvalidArgument(str(exc)) from exc

    def _check_video(self, req: GenerateRequest, owner: str | None) -> FileRecord | None:
        """An extension input must be a video this server made, 720p, at most 141 s."""
        video = req.video
        if video is None:
            return None
        record = None
        if video.file_id is not None:
            record = self.visible_file(video.file_id, owner, message=rules.VIDEO_URI_NOT_FOUND)
            path = self.blobs.local_path(record.blob_key)
        elif video.data is not None:
            path = self._scratch_video(video.data)
        else:
            raise InvalidArgument(rules.VIDEO_URI_NOT_FOUND)
        try:
            info = decode.probe_video(str(path))
            if video.data is not None and not read_provenance(str(path)):
                raise rules.extension_input_invalid(
                    "only videos generated by this server can be extended"
                )
        except decode.MediaError as exc:
            raise InvalidArgument(str(exc)) from exc
        finally:
            if video.data is not None:
                path.unlink(missing_ok=True)
        if sorted((info.width, info.height)) != [720, 1280]:
            raise rules.extension_input_invalid(
                f"the input video is {info.width}x{info.height}; it must be 720p (1280x720 or "
                "720x1280)"
            )
        if info.duration_seconds > MAX_EXTENSION_INPUT_SECONDS:
            raise rules.extension_input_invalid(
                f"the input video is {info.duration_seconds:.1f} s long; it must be at most "
                f"{MAX_EXTENSION_INPUT_SECONDS} s"
            )
        return record

    def _scratch_video(self, data: bytes) -> Path:
        key = f"scratch/{new_id()}.mp4"
        self.blobs.put_bytes(key, data)
        return self.blobs.local_path(key)

    def _persist_inputs(self, op_id: str, req: GenerateRequest) -> GenerateRequest:
        """Write every inline input to `inputs/<op>/<name>` and keep only the key."""

        def persist(name: str, ref: MediaRef | None) -> MediaRef | None:
            if ref is None or ref.data is None:
                return ref
            key = f"inputs/{op_id}/{name}"
            self.blobs.put_bytes(key, ref.data)
            return MediaRef(mime_type=ref.mime_type, blob_key=key)

        return req.with_(
            image=persist("image", req.image),
            last_frame=persist("last_frame", req.last_frame),
            video=persist("video", req.video),
            reference_images=tuple(
                ReferenceImage(
                    image=persist(f"reference_{i}", r.image), reference_type=r.reference_type
                )
                for i, r in enumerate(req.reference_images)
            ),
        )

    # read -------------------------------------------------------------------------------

    def get(self, op_id: str, owner: str | None) -> Operation:
        op = self.db.get_operation(op_id) if is_valid_id(op_id) else None
        if op is None or not _visible(op.owner, owner):
            raise NotFound(f"Operation {op_id} not found.")
        return op

    def list(
        self, owner: str | None, *, model: str | None, page_size: int | None, page_token: str | None
    ) -> Page:
        size = min(max(page_size or 50, 1), 1000)
        before = _decode_page_token(page_token) if page_token else None
        ops = self.db.list_operations(owner, model=model, limit=size + 1, before=before)
        token = None
        if len(ops) > size:
            ops = ops[:size]
            token = _encode_page_token(ops[-1].create_time, ops[-1].id)
        return Page(ops, token)

    # change -----------------------------------------------------------------------------

    def cancel(self, op_id: str, owner: str | None) -> Operation:
        op = self.get(op_id, owner)
        if op.done:
            return op
        self.db.request_cancel(op.id)
        # A queued job never started: end it now. A running one stops at its next step.
        if op.state == State.QUEUED:
            self.db.finish_operation(
                op.id, State.CANCELLED, error_code=RpcCode.CANCELLED, error_message=CANCELLED_MESSAGE
            )
        return self.get(op_id, owner)

    def delete(self, op_id: str, owner: str | None) -> None:
        op = self.get(op_id, owner)
        if not op.done:
            self.db.request_cancel(op.id)
        for record in self.db.files_of(op.id):
            self.blobs.delete(record.blob_key)
            self.db.mark_file_deleted(record.id)
        self.blobs.delete_prefix(f"inputs/{op.id}")
        self.db.delete_operation(op.id)

    # files ------------------------------------------------------------------------------

    def visible_file(
        self, file_id: str, owner: str | None, *, message: str | None = None
    ) -> FileRecord:
        """The file if this caller may read it and it has not expired."""
        record = self.db.get_file(file_id) if is_valid_id(file_id) else None
        if record is None or not _visible(record.owner, owner):
            raise InvalidArgument(message) if message else NotFound(f"File {file_id} not found.")
        if record.deleted or record.expire_time <= utcnow():
            hours = self.settings.retention_hours
            raise NotFound(
                f"File {file_id} has expired: generated videos are kept for {hours:g} hours "
                "after they were created or last used as an extension input."
            )
        return record

    def touch(self, record: FileRecord) -> None:
        """Using a video as an extension input restarts its retention clock (as Veo does)."""
        self.db.touch_file(record.id, self.expire_time_from(utcnow()))

    def expire_time_from(self, now: datetime) -> datetime:
        return now + timedelta(hours=self.settings.retention_hours)

    def sweep_expired(self) -> int:
        """Delete expired videos from the blob store; their rows stay to answer 404 clearly."""
        expired = self.db.expired_files(utcnow())
        for record in expired:
            self.blobs.delete(record.blob_key)
            self.db.mark_file_deleted(record.id)
        if expired:
            log.info("retention: deleted %d expired file(s)", len(expired))
        return len(expired)


def _visible(record_owner: str | None, caller: str | None) -> bool:
    return record_owner == caller


def _encode_page_token(time: datetime, op_id: str) -> str:
    raw = f"{time.isoformat()}|{op_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        time, op_id = raw.split("|", 1)
        return datetime.fromisoformat(time), op_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("Invalid page token.") from exc
