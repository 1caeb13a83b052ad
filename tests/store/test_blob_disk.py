"""The local blob store on a real disk (issue 31, items 3 and 10): files private to the
server's user, a full disk as StorageFull (503) with no partial file left, deletes that work
while the disk is full, and the sweeps of what a killed process left."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.exc import OperationalError

from cinegen.core.errors import StorageError, Unavailable
from cinegen.store.blobs import (
    LocalBlobStore,
    StorageFull,
    is_storage_full,
    private_dir,
    private_file,
)
from tests.store.small_disk import mounted_tmpfs

MiB = 1 << 20


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test (skipped where the test may not mount one)."""
    with mounted_tmpfs(tmp_path / "small", 2 * MiB) as mount:
        yield mount


# privacy ------------------------------------------------------------------------------------


def test_store_directories_are_0700_and_files_0600(tmp_path: Path) -> None:
    root = tmp_path / "data" / "files"
    store = LocalBlobStore(root)
    assert mode(tmp_path / "data") == 0o700 and mode(root) == 0o700
    store.write("inputs/abc/source.png", b"png")
    assert mode(root / "inputs") == 0o700 and mode(root / "inputs" / "abc") == 0o700
    assert mode(root / "inputs" / "abc" / "source.png") == 0o600
    made = tmp_path / "made.mp4"
    made.write_bytes(b"mp4")
    made.chmod(0o644)
    store.write("videos/v.mp4", made)
    assert mode(root / "videos" / "v.mp4") == 0o600


def test_private_file_is_made_0600_and_an_existing_one_kept(tmp_path: Path) -> None:
    db = tmp_path / "d" / "cinegen.db"
    private_file(db)
    assert mode(db) == 0o600 and mode(tmp_path / "d") == 0o700 and db.read_bytes() == b""
    db.write_bytes(b"kept")
    private_file(db)
    assert db.read_bytes() == b"kept"
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    private_dir(existing)
    assert mode(existing) == 0o755  # an operator's own directory is left as it is


# a full disk --------------------------------------------------------------------------------


def test_enospc_on_write_is_storage_full_and_leaves_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "files")

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("cinegen.store.blobs.os.replace", full)
    with pytest.raises(StorageFull) as caught:
        store.write("videos/a.mp4", b"x" * 1000)
    assert isinstance(caught.value, Unavailable)
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"
    assert "storage is full" in caught.value.message
    assert list((tmp_path / "files").rglob("*.part")) == []

    def broken(*_args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("cinegen.store.blobs.os.replace", broken)
    with pytest.raises(StorageError) as other:
        store.write("videos/a.mp4", b"x")
    assert not isinstance(other.value, StorageFull) and other.value.code == 500


def test_a_full_tmpfs_refuses_writes_cleanly_and_deletes_still_work(
    small_disk: Path, tmp_path: Path
) -> None:
    store = LocalBlobStore(small_disk / "files")
    with pytest.raises(StorageFull):
        store.write("videos/big.mp4", os.urandom(3 * MiB))
    source = tmp_path / "render.mp4"  # a finished file on another filesystem, moved in
    source.write_bytes(os.urandom(3 * MiB))
    with pytest.raises(StorageFull):
        store.write("videos/moved.mp4", source)
    assert [p for p in (small_disk / "files").rglob("*") if p.is_file()] == []

    store.write("videos/kept.mp4", os.urandom(MiB))
    filler = small_disk / "filler"
    with pytest.raises(OSError) as full, filler.open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
    assert full.value.errno == errno.ENOSPC
    with pytest.raises(StorageFull):
        store.write("inputs/op/source.png", b"png")
    assert not store.exists("inputs/op/source.png")
    # Deleting needs no space: it frees it.
    store.delete("videos/kept.mp4")
    store.delete_prefix("inputs/op")
    assert not store.exists("videos/kept.mp4")
    store.write("inputs/op/source.png", b"png")
    assert store.exists("inputs/op/source.png")


def test_free_bytes_reads_the_filesystem(small_disk: Path) -> None:
    store = LocalBlobStore(small_disk / "files")
    before = store.free_bytes()
    assert before is not None and 0 < before <= 2 * MiB
    store.write("videos/a.mp4", os.urandom(MiB))
    after = store.free_bytes()
    assert after is not None and after <= before - MiB + 4096


def test_a_full_database_is_recognised(tmp_path: Path) -> None:
    """SQLite's own "database or disk is full" (SQLITE_FULL), bare and as SQLAlchemy wraps
    it, is a full disk; other errors are not."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'full.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA max_page_count = 2")
        conn.exec_driver_sql("CREATE TABLE t (v BLOB)")
    with pytest.raises(OperationalError) as caught, engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA max_page_count = 2")
        conn.exec_driver_sql("INSERT INTO t VALUES (zeroblob(100000))")
    assert isinstance(caught.value.orig, sqlite3.OperationalError)
    assert is_storage_full(caught.value) and is_storage_full(caught.value.orig)
    assert is_storage_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_storage_full(OSError(errno.EIO, "Input/output error"))
    assert not is_storage_full(ValueError("no"))


# what a killed process left -----------------------------------------------------------------


def test_sweep_partial_deletes_only_old_part_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    store.write("videos/a.mp4", b"a")
    old = tmp_path / "files" / "videos" / "b.mp4.part"
    fresh = tmp_path / "files" / "videos" / "c.mp4.part"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"in flight")
    age(old, 7200)
    assert store.sweep_partial(older_than=3600) == 1
    assert not old.exists() and fresh.exists() and store.exists("videos/a.mp4")


def test_children_lists_folders_untouched_for_a_while(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    store.write("inputs/old/source.png", b"a")
    store.write("inputs/new/source.png", b"b")
    for path in (tmp_path / "files/inputs/old/source.png", tmp_path / "files/inputs/old"):
        age(path, 7200)
    assert store.children("inputs") == ["new", "old"]
    assert store.children("inputs", older_than=3600) == ["old"]
    assert store.children("nothing-here") == []
