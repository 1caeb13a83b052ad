"""Blob storage for generated videos and persisted request inputs.

Keys are relative paths made by the server (`videos/<id>.mp4`, `inputs/<op>/<name>`); they
never come from a client. The interface is streams, not paths, so that a store on S3 or GCS
can implement it: `open` gives a seekable binary stream (a download with HTTP Range seeks in
it), `write` takes bytes or a finished file.

What the server keeps is private to its user: directories are made 0700 and files 0600. A
full disk (ENOSPC, or a quota's EDQUOT) is `StorageFull`, a 503 that says so, and the partial
file is removed; deleting never needs space, so it keeps working while the disk is full.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from pathlib import Path
from typing import BinaryIO, Protocol

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


def read_blob(blobs: BlobStore, key: str) -> bytes:
    with blobs.open(key) as stream:
        return stream.read()


def copy_blob(blobs: BlobStore, key: str, destination: Path) -> Path:
    """The blob as a file of the caller's (a decoder or an engine that wants a path)."""
    with blobs.open(key) as stream, open(destination, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    return destination


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
