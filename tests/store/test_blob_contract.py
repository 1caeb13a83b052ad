"""One BlobStore contract, run over each store: the local directory, S3 (moto_server) and
Cloud Storage (fake-gcs-server). What service/files.py and service/inputs.py rely on: whole
writes (a file is moved in), seekable reads, BlobMissing for what is not there, folder-like
prefixes that stop at a `/`, and the sweeps' listings."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from cinegen.core.errors import StorageError
from cinegen.store.blobs import BlobMissing, BlobStore, LocalBlobStore
from tests.api.vertex.support import GcsEmulator, gcs  # noqa: F401 - the fixture
from tests.support.s3 import S3Server, moto_s3  # noqa: F401 - the fixture

DATA = os.urandom(3 * (1 << 20) + 12345)  # several read-ahead windows, not a round number


def local_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def s3_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    from cinegen.store.s3 import S3BlobStore

    server: S3Server = request.getfixturevalue("moto_s3")
    return S3BlobStore(server.bucket(), "cinegen/", client=server.client())


def gcs_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    from cinegen.store.gcs_blobs import GcsBlobStore

    emulator: GcsEmulator = request.getfixturevalue("gcs")
    bucket = f"blobs-{uuid.uuid4().hex[:12]}"
    emulator.make_bucket(bucket)
    return GcsBlobStore(bucket, "cinegen/", client=emulator.client())


STORES: dict[str, Callable[[pytest.FixtureRequest, Path], BlobStore]] = {
    "local": local_store,
    "s3": s3_store,
    "gcs": gcs_store,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return STORES[request.param](request, tmp_path)


def test_bytes_written_read_back_whole_and_by_range(store: BlobStore) -> None:
    store.write("videos/a.mp4", DATA)
    assert store.exists("videos/a.mp4")
    assert store.size("videos/a.mp4") == len(DATA)
    with store.open("videos/a.mp4") as stream:
        assert stream.read() == DATA
    with store.open("videos/a.mp4") as stream:
        stream.seek(100)
        assert stream.read(100) == DATA[100:200]
        assert stream.tell() == 200
        stream.seek(-10, io.SEEK_END)
        assert stream.read() == DATA[-10:]
        stream.seek(2 * (1 << 20) - 3)  # across a read-ahead window's edge
        assert stream.read(10) == DATA[2 * (1 << 20) - 3 : 2 * (1 << 20) + 7]
        stream.seek(5)
        assert stream.read(5) == DATA[5:10]  # back again
        stream.seek(len(DATA) + 5)
        assert stream.read(10) == b""


def test_large_and_small_reads_interleave(store: BlobStore) -> None:
    store.write("videos/c.mp4", DATA)
    MiB = 1 << 20
    with store.open("videos/c.mp4") as stream:
        assert stream.read(MiB) == DATA[:MiB]  # a download's reads
        assert stream.read(MiB) == DATA[MiB : 2 * MiB]
        assert stream.read(7) == DATA[2 * MiB : 2 * MiB + 7]  # a small one right after
        stream.seek(10)
        assert stream.read(MiB) == DATA[10 : 10 + MiB]  # back, large again
        stream.seek(-3, io.SEEK_END)
        assert stream.read(MiB) == DATA[-3:]  # a large read at the end is short


def test_a_file_is_moved_in_and_an_overwrite_replaces(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "made.mp4"
    source.write_bytes(DATA)
    store.write("videos/b.mp4", source)
    assert not source.exists()
    with store.open("videos/b.mp4") as stream:
        assert stream.read() == DATA
    store.write("videos/b.mp4", b"short")
    assert store.size("videos/b.mp4") == 5
    with store.open("videos/b.mp4") as stream:
        assert stream.read() == b"short"


def test_what_is_not_there_is_blob_missing(store: BlobStore) -> None:
    assert not store.exists("videos/none.mp4")
    with pytest.raises(BlobMissing):
        store.open("videos/none.mp4")
    with pytest.raises(BlobMissing):
        store.size("videos/none.mp4")
    store.delete("videos/none.mp4")  # deleting what is gone is fine
    store.delete_prefix("inputs/none")


def test_delete_and_delete_prefix_stop_at_the_folder(store: BlobStore) -> None:
    for key in ("inputs/op1/a.png", "inputs/op1/b.png", "inputs/op10/a.png", "inputs/op2/a"):
        store.write(key, b"x")
    store.delete("inputs/op2/a")
    assert not store.exists("inputs/op2/a")
    store.delete_prefix("inputs/op1")
    assert not store.exists("inputs/op1/a.png")
    assert not store.exists("inputs/op1/b.png")
    assert store.exists("inputs/op10/a.png")  # `op1` is a folder, not a string prefix


def test_children_lists_folders_by_their_newest_blob(store: BlobStore) -> None:
    for key in ("inputs/op1/a.png", "inputs/op1/deep/b.png", "inputs/op2/a.png"):
        store.write(key, b"x")
    store.write("derived/f/thumbnail.jpg", b"y")
    assert store.children("inputs") == ["op1", "op2"]
    assert store.children("inputs", older_than=3600) == []  # all written just now
    assert store.children("nothing") == []


def test_sweeps_keep_finished_blobs(store: BlobStore) -> None:
    store.write("videos/kept.mp4", b"z")
    assert store.sweep_partial(older_than=0) >= 0
    assert store.exists("videos/kept.mp4")
    free = store.free_bytes()
    assert free is None or free > 0


@pytest.mark.parametrize("key", ["../escape", "videos/../../x", ""])
def test_keys_stay_inside_the_store(store: BlobStore, key: str) -> None:
    with pytest.raises(StorageError):
        store.write(key, b"x")
