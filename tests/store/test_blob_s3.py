"""What is S3's own in the S3 blob store (the shared contract is test_blob_contract.py): big
files go up in parts, stale multipart uploads are aborted by the partial-write sweep, a
presigned URL reads the blob with no credentials, an unreachable store is 503, and a bad
`CINEGEN_BLOB_URL` stops the server at start-up with a message, not a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cinegen.core.errors import StorageError
from cinegen.store.blob_urls import blob_store_from_settings, parse_blob_url
from cinegen.store.blobs import BlobStoreConfigError, BlobStoreUnavailable, LocalBlobStore
from cinegen.store.s3 import S3BlobStore, s3_client
from tests.support.app import settings_for
from tests.support.s3 import AWS_ENV, S3Server, moto_s3  # noqa: F401 - the fixture
from tests.support.server import REPO

MiB = 1 << 20
MOTO_INITIATED = 1289422113.0  # 2010-11-10T20:48:33Z


@pytest.fixture
def store(moto_s3: S3Server) -> S3BlobStore:  # noqa: F811
    return S3BlobStore(moto_s3.bucket(), "p/", client=moto_s3.client())


def calls(store: S3BlobStore, operation: str) -> list[Any]:
    seen: list[Any] = []
    store.client.meta.events.register(
        f"before-send.s3.{operation}", lambda request, **_: seen.append(request)
    )
    return seen


def test_a_big_file_goes_up_in_parts(
    store: S3BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cinegen.store.s3.MULTIPART_THRESHOLD", 5 * MiB)
    data = os.urandom(11 * MiB + 7)
    source = tmp_path / "big.mp4"
    source.write_bytes(data)
    started = calls(store, "CreateMultipartUpload")
    store.write("videos/big.mp4", source)
    assert len(started) == 1
    assert not source.exists()
    with store.open("videos/big.mp4") as stream:
        assert stream.read() == data
    head = store.client.head_object(Bucket=store.bucket, Key="p/videos/big.mp4")
    assert head["ContentType"] == "video/mp4"


def test_the_partial_sweep_aborts_stale_multipart_uploads(store: S3BlobStore) -> None:
    client = store.client
    client.create_multipart_upload(Bucket=store.bucket, Key="p/videos/killed.mp4")
    client.create_multipart_upload(Bucket=store.bucket, Key="elsewhere/not-ours.mp4")
    # moto reports every upload as begun on 2010-11-10: with a cutoff before that the upload
    # is recent (maybe still running) and kept; an hour's cutoff finds it stale.
    assert store.sweep_partial(older_than=time.time() - MOTO_INITIATED + 86400) == 0
    assert store.sweep_partial(older_than=3600) == 1
    left = client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert [upload["Key"] for upload in left] == ["elsewhere/not-ours.mp4"]


def test_a_presigned_url_reads_the_blob_without_credentials(store: S3BlobStore) -> None:
    store.write("videos/v.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(300))
    url = store.presigned_url("videos/v.mp4", seconds=60, filename="v.mp4", media_type="video/mp4")
    assert url is not None and "X-Amz-Expires=60" in url
    answer = httpx.get(url, headers={"Range": "bytes=4-7"}, trust_env=False)
    assert answer.status_code == 206
    assert answer.content == b"ftyp"
    assert answer.headers["content-type"] == "video/mp4"


def test_an_unreachable_store_is_unavailable(tmp_path: Path) -> None:
    store = S3BlobStore("bucket", "", client=_client("http://127.0.0.1:9"))
    with pytest.raises(BlobStoreUnavailable):
        store.open("videos/a.mp4")
    with pytest.raises(BlobStoreUnavailable):
        store.write("videos/a.mp4", b"x")
    source = tmp_path / "made.mp4"
    source.write_bytes(b"video")
    with pytest.raises(BlobStoreUnavailable):  # upload_file wraps the error: unwrapped
        store.write("videos/a.mp4", source)
    assert source.exists()  # not stored, so not consumed
    with pytest.raises(BlobStoreUnavailable):
        store.children("inputs")


def test_a_refused_upload_is_a_storage_error(moto_s3: S3Server, tmp_path: Path) -> None:  # noqa: F811
    store = S3BlobStore("no-such-bucket-at-all", "", client=moto_s3.client())
    source = tmp_path / "made.mp4"
    source.write_bytes(b"video")
    with pytest.raises(StorageError) as caught:
        store.write("videos/a.mp4", source)
    assert not isinstance(caught.value, BlobStoreUnavailable)
    assert "NoSuchBucket" in caught.value.message


def test_an_empty_segment_is_refused(store: S3BlobStore) -> None:
    with pytest.raises(StorageError):
        store.write("videos//a.mp4", b"x")


def _client(endpoint: str) -> Any:
    for name, value in AWS_ENV.items():
        os.environ.setdefault(name, value)
    return s3_client(endpoint)


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://Bad_Bucket/x", "s3://", "gs:///x"])
def test_a_malformed_blob_url_is_a_config_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(BlobStoreConfigError, match="CINEGEN_BLOB_URL"):
        parse_blob_url(url, tmp_path)


def test_blob_urls_choose_the_store(
    moto_s3: S3Server,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    local = blob_store_from_settings(settings_for(tmp_path))
    assert isinstance(local, LocalBlobStore) and local.root == (tmp_path / "files").resolve()
    bucket = moto_s3.bucket()
    s3 = blob_store_from_settings(
        settings_for(tmp_path, blob_url=f"s3://{bucket}/a/b", s3_endpoint_url=moto_s3.url)
    )
    assert isinstance(s3, S3BlobStore) and (s3.bucket, s3.prefix) == (bucket, "a/b/")
    s3.write("videos/x.mp4", b"x")
    assert moto_s3.keys(bucket) == ["a/b/videos/x.mp4"]
    with pytest.raises(BlobStoreConfigError, match="cannot be used"):
        blob_store_from_settings(
            settings_for(tmp_path, blob_url="s3://no-such-bucket/p", s3_endpoint_url=moto_s3.url)
        )
    with pytest.raises(BlobStoreConfigError, match="cannot be reached"):
        blob_store_from_settings(
            settings_for(
                tmp_path, blob_url=f"s3://{bucket}/p", s3_endpoint_url="http://127.0.0.1:9"
            )
        )


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker"]])
def test_serve_and_worker_with_a_missing_bucket_exit_with_a_message(
    moto_s3: S3Server,  # noqa: F811
    tmp_path: Path,
    command: list[str],
) -> None:
    env = {
        **os.environ,
        **AWS_ENV,
        "CINEGEN_DATA_DIR": str(tmp_path),
        "CINEGEN_HOST": "127.0.0.1",
        "CINEGEN_BLOB_URL": "s3://no-such-bucket/videos",
        "CINEGEN_S3_ENDPOINT_URL": moto_s3.url,
        "CINEGEN_BROKER_URL": "redis://127.0.0.1:9/0",  # the worker's; never reached
    }
    done = subprocess.run(
        [sys.executable, "-m", "cinegen.cli", *command],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "CINEGEN_BLOB_URL=s3://no-such-bucket/videos" in done.stderr
    assert "Traceback" not in done.stderr
