"""Blob storage for generated videos and persisted request inputs.

Keys are relative paths made by the server (`videos/<id>.mp4`, `inputs/<op>/<name>`); they
never come from a client. The interface is streams, not paths, so that a store on S3 or GCS
can implement it: `open` gives a seekable binary stream (a download with HTTP Range seeks in
it), `write` takes bytes or a finished file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

from cinegen.core.errors import StorageError


class BlobMissing(StorageError):
    """The key names no blob (it was never written, or it was deleted)."""


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


def read_blob(blobs: BlobStore, key: str) -> bytes:
    with blobs.open(key) as stream:
        return stream.read()


def copy_blob(blobs: BlobStore, key: str, destination: Path) -> Path:
    """The blob as a file of the caller's (a decoder or an engine that wants a path)."""
    with blobs.open(key) as stream, open(destination, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    return destination


class LocalBlobStore:
    """Files under one directory, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise StorageError(f"blob key escapes the store: {key!r}")
        return path

    def write(self, key: str, source: bytes | Path) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        try:
            if isinstance(source, Path):
                shutil.move(str(source), tmp)
            else:
                tmp.write_bytes(source)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
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
