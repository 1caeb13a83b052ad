"""Blob storage for generated videos and persisted request inputs.

Keys are relative paths made by the server (`videos/<id>.mp4`, `inputs/<op>/<name>`); they
never come from a client. The interface is streams, not paths, so that a store on S3 or GCS
can implement it: `open` gives a seekable binary stream (a download with HTTP Range seeks in
it), `write` takes bytes or a finished file. `LocalBlobStore` is the default; S3 and GCS
stores (store/s3.py, store/gcs_blobs.py) share `RangedReader`, a stream over ranged reads, and
`cloud_key`, the key checks a store without directories needs.

What the server keeps is private to its user: directories are made 0700 and files 0600. A
full disk (ENOSPC, or a quota's EDQUOT) is `StorageFull`, a 503 that says so, and the partial
file is removed; deleting never needs space, so it keeps working while the disk is full.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from cinegen.core.errors import StorageError, Unavailable

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # sqlite3's SQLITE_FULL: "database or disk is full"
_PG_DISK_FULL = "53100"  # PostgreSQL's disk_full SQLSTATE

STORAGE_FULL_MESSAGE = (
    "The server's storage is full, so no new video can be stored until space is freed. "
    "Delete operations or videos you no longer need, or try again later."
)


class BlobMissing(StorageError):
    """The key names no blob (it was never written, or it was deleted)."""


class BlobStoreUnavailable(Unavailable):
    """The blob store (S3, GCS) could not be reached or answered with a server error: 503,
    since it may pass."""


class BlobStoreConfigError(StorageError):
    """`CINEGEN_BLOB_URL` names no usable store (malformed, no such bucket, no access): a
    start-up error that says which setting to fix."""


class StorageFull(Unavailable):
    """The disk (or quota) the server stores to is full, or below the free-space threshold
    (`CINEGEN_MIN_FREE_BYTES`): 503 UNAVAILABLE, since freeing space makes it pass."""

    def __init__(self, message: str = STORAGE_FULL_MESSAGE) -> None:
        super().__init__(message)


def is_storage_full(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is a full disk: an OSError ENOSPC or
    EDQUOT, SQLite's SQLITE_FULL, PostgreSQL's disk_full (a database driver's error is also
    found under SQLAlchemy's `.orig`)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, StorageFull):
            return True
        if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
            return True
        if getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if _PG_DISK_FULL in (getattr(error, "pgcode", None), getattr(error, "sqlstate", None)):
            return True
        orig = getattr(error, "orig", None)
        pending += [error.__cause__, error.__context__]
        if isinstance(orig, BaseException):
            pending.append(orig)
    return False


def private_dir(path: Path) -> None:
    """Make `path` and each missing directory above it, 0700 (an existing one is left as
    it is: the operator chose it)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist (before SQLite opens it, so that its
    journal files, made with the database file's mode, are private too)."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


class BlobStore(Protocol):
    def write(self, key: str, source: bytes | Path) -> None:
        """Store `source` under `key`, whole or not at all. A file is moved in (consumed)."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A seekable binary stream of the blob; BlobMissing if there is none."""
        ...

    def size(self, key: str) -> int:
        """The blob's length in bytes; BlobMissing if there is none."""
        ...

    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...

    def children(self, prefix: str, *, older_than: float = 0.0) -> list[str]:
        """The names directly under `prefix` left untouched for `older_than` seconds."""
        ...

    def sweep_partial(self, *, older_than: float) -> int:
        """Delete the partial writes a killed process left, untouched for `older_than`
        seconds; how many."""
        ...

    def free_bytes(self) -> int | None:
        """Space left for new blobs; None where the store cannot tell."""
        ...

    def presigned_url(
        self, key: str, *, seconds: int, filename: str, media_type: str
    ) -> str | None:
        """A URL on the store's own origin that reads the blob without credentials for
        `seconds`; None where the store cannot make one (local files, an emulator)."""
        ...


def read_blob(blobs: BlobStore, key: str) -> bytes:
    with blobs.open(key) as stream:
        return stream.read()


def copy_blob(blobs: BlobStore, key: str, destination: Path) -> Path:
    """The blob as a file of the caller's (a decoder or an engine that wants a path)."""
    with blobs.open(key) as stream, open(destination, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    return destination


BUCKET_NAME = r"[a-z0-9](?:[a-z0-9._-]{0,220}[a-z0-9])?"
"""A bucket name in a URL: S3's are 3-63 of a-z 0-9 . -, GCS's up to 222 with _ too (one-letter
names are let through, for emulators)."""


def has_dot_segment(name: str) -> bool:
    """A `.` or `..` segment: object names are literal, but a proxy or emulator in between
    might resolve them, and a prefix check must not be walked out of."""
    return any(part in (".", "..") for part in name.split("/"))


def cloud_key(prefix: str, key: str) -> str:
    """The object name of `key` under the store's `prefix`: keys are relative, with no empty,
    `.` or `..` segment (object names are literal, but a proxy in between might resolve them)."""
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"bad blob key: {key!r}")
    return f"{prefix}{key}"


def cloud_prefix(path: str) -> str:
    """A URL's path as an object-name prefix: "" or `a/b/`."""
    path = path.strip("/")
    return f"{path}/" if path else ""


def newest_by_child(entries: Iterable[tuple[str, float]], prefix: str) -> dict[str, float]:
    """Object names under `prefix` with their modification times, grouped by the first name
    segment below it, each with the newest time in its group (a folder is as recent as the
    newest object in it, as `_last_touched` says for directories)."""
    newest: dict[str, float] = {}
    for name, modified in entries:
        child = name[len(prefix) :].split("/", 1)[0]
        if child:
            newest[child] = max(newest.get(child, 0.0), modified)
    return newest


def media_type_of(key: str) -> str:
    """The Content-Type a cloud store keeps with a blob (and answers a presigned GET with)."""
    return "video/mp4" if key.endswith(".mp4") else "application/octet-stream"


class RangeBody(Protocol):
    """An open ranged GET's body: read it in pieces, close it."""

    def read(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


class CheckedBody:
    """A cloud store's streamed GET body whose read errors are the store's typed ones: each
    read goes through the store's `call(what, action)`, which maps them."""

    def __init__(
        self,
        call: Callable[[str, Callable[[], bytes]], bytes],
        key: str,
        read: Callable[[int | None], bytes],
        close: Callable[[], None],
    ) -> None:
        self._call, self._key, self._read, self.close = call, key, read, close

    def read(self, size: int = -1, /) -> bytes:
        return self._call(self._key, lambda: self._read(None if size < 0 else size))


class RangedReader(io.RawIOBase):
    """A seekable read-only stream of a remote object through ranged reads: a download with
    HTTP Range reads only its range, and a decoder that seeks (the moov atom at the end, then
    the frames) reads only what it touches.

    Small reads (a decoder's) are read ahead to `window` bytes with `fetch`. Large reads (a
    download's) go through one open ranged GET (`opener`, where the store has one) that is
    read on for as long as the reads follow each other, so a whole video is one request, not
    one per chunk; with no opener they fetch `block` bytes at a time. None reads past `bound`
    (set by a ranged download), so a 100-byte range is one 100-byte read."""

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        *,
        opener: Callable[[int, int], RangeBody] | None = None,
        window: int = 1 << 18,
        block: int = 8 << 20,
    ) -> None:
        super().__init__()
        self._fetch = fetch  # (first, last) inclusive -> bytes
        self._opener = opener  # (first, last) inclusive -> an open body
        self.size = size
        self.window = window
        self.block = block
        self.bound = size
        self._pos = 0
        self._buffer = b""
        self._buffer_start = 0
        self._body: RangeBody | None = None
        self._body_pos = 0
        self._body_end = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def limit(self, end: int) -> None:
        """Read ahead no further than byte `end` (exclusive): the caller reads no more."""
        self.bound = max(0, min(end, self.size))

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        chunk = self._next(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def read(self, size: int | None = -1, /) -> bytes:
        """Up to `size` bytes, handed over without the copy RawIOBase.read makes."""
        if size is None or size < 0:
            return self.readall()
        return self._next(size)

    def _next(self, size: int) -> bytes:
        """Up to `size` bytes from the position (b"" at the end), the position moved on."""
        wanted = min(size, self.size - self._pos)
        if wanted <= 0:
            return b""
        offset = self._pos - self._buffer_start
        if 0 <= offset < len(self._buffer):
            chunk = self._buffer[offset : offset + wanted]
        elif self._streaming(wanted):
            chunk = self._read_body(wanted)
        else:
            self._fill(wanted)
            chunk = self._buffer[:wanted]
        if not chunk:
            raise StorageError("the blob ended before its recorded size")
        self._pos += len(chunk)
        return chunk

    def _streaming(self, wanted: int) -> bool:
        """Whether this read goes through the open GET: it follows the last one, or it is
        large enough to be a download's."""
        if self._opener is None:
            return False
        following = self._body is not None and self._body_pos == self._pos < self._body_end
        return following or wanted >= self.window

    def _read_body(self, wanted: int) -> bytes:
        if not (self._body is not None and self._body_pos == self._pos < self._body_end):
            self._close_body()
            assert self._opener is not None
            self._body_end = self.bound if self._pos < self.bound else self.size
            self._body = self._opener(self._pos, self._body_end - 1)
            self._body_pos = self._pos
        assert self._body is not None
        chunk = self._body.read(min(wanted, self._body_end - self._pos))
        self._body_pos += len(chunk)
        return chunk

    def _fill(self, wanted: int) -> None:
        # With no open GET to read on, a download's reads take `block` bytes per request.
        ahead = self.block if wanted >= self.window else self.window
        end = self._pos + max(wanted, ahead)
        if self._pos < self.bound:
            end = min(end, max(self.bound, self._pos + wanted))
        end = min(end, self.size)
        self._buffer = self._fetch(self._pos, end - 1)
        self._buffer_start = self._pos

    def _close_body(self) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):
                self._body.close()
            self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()

    def readall(self) -> bytes:
        wanted = self.size - self._pos
        if wanted <= 0:
            return b""
        pieces = [self._next(wanted)]
        got = len(pieces[0])
        while got < wanted and (more := self._next(wanted - got)):
            pieces.append(more)
            got += len(more)
        return b"".join(pieces)

    def as_binary(self) -> BinaryIO:
        return cast(BinaryIO, self)


class LocalBlobStore:
    """Files under one directory, written atomically (temp file + rename), private to the
    server's user (directories 0700, files 0600)."""

    PARTIAL_SUFFIX = ".part"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        private_dir(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise StorageError(f"blob key escapes the store: {key!r}")
        return path

    def write(self, key: str, source: bytes | Path) -> None:
        path = self._path(key)
        tmp = path.with_name(path.name + self.PARTIAL_SUFFIX)
        try:
            private_dir(path.parent)
            if isinstance(source, Path):
                shutil.move(str(source), tmp)
                os.chmod(tmp, PRIVATE_FILE)
            else:
                handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
                with os.fdopen(handle, "wb") as out:
                    out.write(source)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if exc.errno in _FULL_ERRNOS:
                raise StorageFull() from exc
            raise StorageError(f"Could not store {key}: {exc.strerror or exc}") from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError as exc:
            raise BlobMissing(f"No blob {key}.") from exc

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise BlobMissing(f"No blob {key}.") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)

    def children(self, prefix: str, *, older_than: float = 0.0) -> list[str]:
        path = self._path(prefix)
        if not path.is_dir():
            return []
        cutoff = time.time() - older_than
        return sorted(
            entry.name
            for entry in path.iterdir()
            if _last_touched(entry) <= cutoff and not entry.name.endswith(self.PARTIAL_SUFFIX)
        )

    def sweep_partial(self, *, older_than: float) -> int:
        cutoff = time.time() - older_than
        swept = 0
        for part in self.root.rglob(f"*{self.PARTIAL_SUFFIX}"):
            with contextlib.suppress(OSError):
                if part.is_file() and part.stat().st_mtime <= cutoff:
                    part.unlink()
                    swept += 1
        return swept

    def free_bytes(self) -> int | None:
        return shutil.disk_usage(self.root).free

    def presigned_url(
        self, key: str, *, seconds: int, filename: str, media_type: str
    ) -> str | None:
        return None  # files on this machine: the server streams them


def _last_touched(path: Path) -> float:
    """The newest modification time of `path` and, for a directory, of what it holds."""
    try:
        newest = path.stat().st_mtime
        if path.is_dir():
            for entry in path.iterdir():
                with contextlib.suppress(OSError):
                    newest = max(newest, entry.stat().st_mtime)
        return newest
    except OSError:
        return time.time()
