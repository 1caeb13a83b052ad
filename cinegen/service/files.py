"""Generated videos as files: who may read them, for how long, and their bytes.

Routes and the worker come here instead of to the blob store: a download opens a stream
(seekable, so HTTP Range is a seek), a finished sample is stored and recorded in one call,
and the stills of a video are made once and kept beside it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import BinaryIO

from cinegen.core.errors import InvalidArgument, NotFound
from cinegen.media.stills import STILLS
from cinegen.settings import Settings
from cinegen.store.blobs import BlobMissing, BlobStore, StorageFull, read_blob
from cinegen.store.db import Database, FileRecord, utcnow

log = logging.getLogger("cinegen.service")

# Scratch names of this package in the system temp dir (jobs/worker.py, service/inputs.py,
# `derived_body` here): `cinegen-<random>`, `cinegen-check-...`, `cinegen-body-...`.
SCRATCH_PREFIX = "cinegen-"
# A partial blob write or an `inputs/<op>/` folder with no operation is orphaned once it is
# older than any write or submit takes (a submit persists inputs, then inserts the row).
ORPHAN_AGE_SECONDS = 3600.0

HASH_CHUNK_BYTES = 1 << 20

_STILL_LOCKS = [threading.Lock() for _ in range(32)]


def new_id() -> str:
    """Lower-case hex: the SDKs cut file ids with `^[a-z0-9]+`, operation ids must be URL-safe."""
    return secrets.token_hex(8)


def is_valid_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c in "0123456789abcdef" for c in value)


class AdminOwner(str):
    """The key id of an admin key (api/auth.py makes it): it owns what it creates like any
    key, and may also read (cancel, delete) every key's operations and files."""

    __slots__ = ()


def visible(record_owner: str | None, caller: str | None) -> bool:
    """The one place that says who sees an operation or a file: its owner, and admins."""
    return record_owner == caller or isinstance(caller, AdminOwner)


Presign = Callable[[str, str], "str | None"]  # (filename, media type) -> URL or None


@dataclass
class OpenedFile:
    """A file's record and an open stream of its bytes; close it (or use `with`). `presign`
    is set where downloads may redirect (`CINEGEN_BLOB_REDIRECT`): it gives a short-lived URL
    on the store's origin, or None where the store cannot make one."""

    record: FileRecord
    stream: BinaryIO
    size: int
    presign: Presign | None = None

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stream.close()


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, settings: Settings) -> None:
        self.db = db
        self.blobs = blobs
        self.settings = settings

    # read -------------------------------------------------------------------------------

    def visible_file(
        self, file_id: str, owner: str | None, *, message: str | None = None
    ) -> FileRecord:
        """The file if this caller may read it and it has not expired."""
        record = self.db.get_file(file_id) if is_valid_id(file_id) else None
        if record is None or not visible(record.owner, owner):
            raise InvalidArgument(message) if message else NotFound(f"File {file_id} not found.")
        if record.deleted or record.expire_time <= utcnow():
            hours = self.settings.retention_hours
            raise NotFound(
                f"File {file_id} has expired: generated videos are kept for {hours:g} hours "
                "after they were created or last used as an extension input."
            )
        return record

    def open_file(self, file_id: str, owner: str | None) -> OpenedFile:
        """The file's bytes as a seekable stream, for a download (with Range) or a copy."""
        record = self.visible_file(file_id, owner)
        try:
            opened = OpenedFile(record, self.blobs.open(record.blob_key), record.size_bytes)
        except BlobMissing as exc:
            raise NotFound(f"File {file_id} is no longer stored.") from exc
        if self.settings.blob_redirect:
            opened.presign = partial(self._presign, record.blob_key)
        return opened

    def _presign(self, key: str, filename: str, media_type: str) -> str | None:
        seconds = self.settings.blob_redirect_seconds
        return self.blobs.presigned_url(
            key, seconds=seconds, filename=filename, media_type=media_type
        )

    def read_file(self, file_id: str, owner: str | None) -> bytes:
        with self.open_file(file_id, owner) as opened:
            return opened.stream.read()

    def read_blob(self, key: str) -> bytes:
        return read_blob(self.blobs, key)

    def still(self, file_id: str, owner: str | None, variant: str) -> tuple[bytes, str]:
        """A still of the video (`thumbnail` | `spritesheet`) and its MIME type, made from the
        MP4 the first time it is asked for and kept under `derived/<file id>/`."""
        name, mime, make = STILLS[variant]
        key = f"{_derived_prefix(file_id)}/{name}"
        with _STILL_LOCKS[hash(key) % len(_STILL_LOCKS)]:
            if not self.blobs.exists(key):
                with self.open_file(file_id, owner) as opened:
                    self.blobs.write(key, make(opened.stream))
            return self.read_blob(key), mime

    def derived_body(
        self,
        file_ids: Sequence[str],
        owner: str | None,
        name: str,
        write: Callable[[BinaryIO], None],
    ) -> tuple[BinaryIO, int]:
        """A response body made from these files, written once by `write` and kept under
        `derived/<first file id>/<name>` (deleted with the files), opened to be streamed, and
        its size. For what never changes, such as a finished operation with its videos inline:
        concurrent polls share one stored copy instead of holding one each in memory. Every
        file is checked as a download is, so an expired video still answers 404."""
        for file_id in file_ids:
            self.visible_file(file_id, owner)
        key = f"{_derived_prefix(file_ids[0])}/{name}"
        with _STILL_LOCKS[hash(key) % len(_STILL_LOCKS)]:
            if not self.blobs.exists(key):
                handle, temp = tempfile.mkstemp(prefix="cinegen-body-")
                path = Path(temp)
                try:
                    with os.fdopen(handle, "wb") as out:
                        write(out)
                    self.blobs.write(key, path)
                finally:
                    path.unlink(missing_ok=True)
        try:
            return self.blobs.open(key), self.blobs.size(key)
        except BlobMissing as exc:  # the files were deleted meanwhile
            raise NotFound(f"File {file_ids[0]} is no longer stored.") from exc

    # write ------------------------------------------------------------------------------

    def store_video(
        self, *, operation_id: str, owner: str | None, file_id: str, source: Path
    ) -> FileRecord:
        """Move a finished MP4 into the store and record it, kept for the retention period;
        its sha256 is recorded too, for good: the proof that this server made those bytes
        when they come back as an extension input (`made_here`)."""
        key = f"videos/{file_id}.mp4"
        size = source.stat().st_size
        digest = file_sha256(source)  # before the write, which may move the file away
        self.blobs.write(key, source)
        now = utcnow()
        record = FileRecord(
            id=file_id,
            operation_id=operation_id,
            owner=owner,
            blob_key=key,
            mime_type="video/mp4",
            size_bytes=size,
            create_time=now,
            expire_time=self.expire_time_from(now),
            deleted=False,
        )
        self.db.insert_file(record)
        self.db.record_made_video(digest, file_id)
        return record

    def made_here(self, data: bytes) -> bool:
        """True if this server stored these exact bytes as an output (even if that file has
        since expired): the only proof of origin a client cannot forge."""
        return self.db.is_made_video(hashlib.sha256(data).hexdigest())

    def discard(self, records: Iterable[FileRecord]) -> None:
        """Delete files and what was derived from them; their rows stay to answer 404.
        Every blob goes before any row is written: on a full disk, where a database write
        may fail too, the space is freed first and the next try finds room."""
        records = list(records)
        for record in records:
            self.blobs.delete(record.blob_key)
            self.blobs.delete_prefix(_derived_prefix(record.id))
        for record in records:
            self.db.mark_file_deleted(record.id)

    def live_files(self, op_id: str) -> list[FileRecord]:
        """The operation's files not deleted yet."""
        return [record for record in self.db.files_of(op_id) if not record.deleted]

    def discard_operation(self, op_id: str) -> None:
        self.discard(self.live_files(op_id))

    def first_expire_time(self, file_id: str) -> datetime | None:
        """When a sample's file expires, or None once it is gone."""
        record = self.db.get_file(file_id)
        return record.expire_time if record is not None and not record.deleted else None

    # space ------------------------------------------------------------------------------

    def free_bytes(self) -> int | None:
        """The least free space of the blob store and the data directory (SQLite's file)."""
        free = [value] if (value := self.blobs.free_bytes()) is not None else []
        data_dir = self.settings.data_dir
        if data_dir.exists():
            free.append(shutil.disk_usage(data_dir).free)
        return min(free) if free else None

    def check_free_space(self) -> None:
        """Refuse new work (StorageFull, 503) while free space is under `min_free_bytes`."""
        minimum = self.settings.min_free_bytes
        if minimum <= 0:
            return
        free = self.free_bytes()
        if free is not None and free < minimum:
            raise StorageFull(
                f"The server's storage is full: {free // (1 << 20)} MiB free, under the "
                f"{minimum // (1 << 20)} MiB needed to take new videos. Delete operations or "
                "videos you no longer need, or try again later."
            )

    # retention --------------------------------------------------------------------------

    def touch(self, record: FileRecord) -> None:
        """Using a video as an extension input restarts its retention clock (as Veo does)."""
        self.db.touch_file(record.id, self.expire_time_from(utcnow()))

    def expire_time_from(self, now: datetime) -> datetime:
        return now + timedelta(hours=self.settings.retention_hours)

    def sweep_expired(self) -> int:
        """Delete expired videos from the blob store; their rows stay to answer 404 clearly."""
        expired = self.db.expired_files(utcnow())
        self.discard(expired)
        if expired:
            log.info("retention: deleted %d expired file(s)", len(expired))
        return len(expired)

    def sweep_orphans(self, *, temp_dir: Path | None = None) -> int:
        """At start-up, delete what killed processes left behind: scratch directories and
        files named `cinegen-*` in the system temp dir (ours, untouched for
        `scratch_max_age_seconds`), partial blob writes (`*.part`) and `inputs/<op>/` folders
        whose operation no longer exists (both untouched for an hour, so that a write or a
        submit in flight in another process on the same data dir is left alone)."""
        scratch = _sweep_scratch(
            Path(temp_dir or tempfile.gettempdir()), self.settings.scratch_max_age_seconds
        )
        partial = self.blobs.sweep_partial(older_than=ORPHAN_AGE_SECONDS)
        inputs = 0
        for name in self.blobs.children("inputs", older_than=ORPHAN_AGE_SECONDS):
            if is_valid_id(name) and self.db.get_operation(name) is None:
                self.blobs.delete_prefix(f"inputs/{name}")
                inputs += 1
        if scratch or partial or inputs:
            log.info(
                "start-up sweep: deleted %d scratch dir(s), %d partial write(s), "
                "%d orphan input folder(s)",
                scratch,
                partial,
                inputs,
            )
        return scratch + partial + inputs


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks (a 4k video is hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _derived_prefix(file_id: str) -> str:
    return f"derived/{file_id}"


def _sweep_scratch(temp_dir: Path, max_age: float) -> int:
    """Delete this user's `cinegen-*` entries in `temp_dir` untouched for `max_age` seconds
    (a directory counts as touched when anything directly in it is)."""
    cutoff = time.time() - max_age
    swept = 0
    try:
        entries = list(temp_dir.glob(f"{SCRATCH_PREFIX}*"))
    except OSError:
        return 0
    for entry in entries:
        try:
            info = entry.lstat()
            if info.st_uid != os.getuid() or entry.is_symlink():
                continue
            newest = info.st_mtime
            if entry.is_dir():
                newest = max([newest, *(child.lstat().st_mtime for child in entry.iterdir())])
            if newest > cutoff:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            swept += 1
        except OSError:
            continue  # gone meanwhile, or not ours to delete
    return swept
