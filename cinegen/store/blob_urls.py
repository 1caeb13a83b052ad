"""Which blob store the server uses: `CINEGEN_BLOB_URL`.

"" (the default) is the local directory `CINEGEN_BLOB_DIR` (`<data dir>/files`); a plain path
is a local directory too; `s3://bucket/prefix` is an S3 bucket (store/s3.py,
`CINEGEN_S3_ENDPOINT_URL` for MinIO, Ceph or moto); `gs://bucket/prefix` a Cloud Storage bucket
(store/gcs_blobs.py, `CINEGEN_GCS_ENDPOINT` for an emulator). A remote bucket is checked at
start-up, so that a typo or missing credentials stop the server with a message naming the
setting (`BlobStoreConfigError`) instead of failing the first video.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cinegen.core.errors import StorageError, Unavailable
from cinegen.settings import Settings
from cinegen.store.blobs import (
    BUCKET_NAME,
    BlobStore,
    BlobStoreConfigError,
    LocalBlobStore,
    cloud_prefix,
    has_dot_segment,
)

_BUCKET_URL = re.compile(rf"^(s3|gs)://({BUCKET_NAME})(/.*)?$")


@dataclass(frozen=True)
class BlobUrl:
    scheme: str  # "file", "s3" or "gs"
    bucket: str
    prefix: str  # "" or ends in "/"
    path: Path | None = None


def parse_blob_url(url: str, default_dir: Path) -> BlobUrl:
    """`CINEGEN_BLOB_URL` → where; BlobStoreConfigError names what is wrong."""
    url = url.strip()
    if not url:
        return BlobUrl("file", "", "", default_dir)
    if url.startswith("file://"):
        return BlobUrl("file", "", "", Path(url.removeprefix("file://")))
    if "://" not in url:
        return BlobUrl("file", "", "", Path(url))
    match = _BUCKET_URL.match(url)
    if match is None:
        raise BlobStoreConfigError(
            f"CINEGEN_BLOB_URL={url!r} is not a blob store: use a directory, "
            "s3://BUCKET/PREFIX or gs://BUCKET/PREFIX."
        )
    scheme, bucket, path = match.groups()
    prefix = cloud_prefix(path or "")
    if has_dot_segment(prefix):
        raise BlobStoreConfigError(f"CINEGEN_BLOB_URL={url!r}: the prefix has a . or .. segment.")
    return BlobUrl(scheme, bucket, prefix)


class RemoteBlobStore(BlobStore, Protocol):
    """A remote store: a BlobStore with a `check` of its bucket."""

    def check(self) -> None: ...


def blob_store_from_settings(settings: Settings, *, check: bool = True) -> BlobStore:
    """The configured store; a remote one is checked (`check`): its bucket exists and the
    credentials reach it, else BlobStoreConfigError with the reason."""
    where = parse_blob_url(settings.blob_url, settings.resolved_blob_dir)
    if where.scheme == "file":
        assert where.path is not None
        return LocalBlobStore(where.path)
    store: RemoteBlobStore
    if where.scheme == "s3":
        from cinegen.store.s3 import S3BlobStore, s3_client

        store = S3BlobStore(where.bucket, where.prefix, client=s3_client(settings.s3_endpoint_url))
    else:
        from cinegen.store.gcs import gcs_client
        from cinegen.store.gcs_blobs import GcsBlobStore

        client = gcs_client(settings.gcs_endpoint, settings.gcs_project)
        store = GcsBlobStore(
            where.bucket, where.prefix, client=client, endpoint=settings.gcs_endpoint
        )
    if check:
        _check(store, settings.blob_url)
    return store


def _check(store: RemoteBlobStore, url: str) -> None:
    try:
        store.check()
    except StorageError as exc:  # the bucket is missing (BlobMissing) or refused
        raise BlobStoreConfigError(
            f"CINEGEN_BLOB_URL={url}: the bucket cannot be used ({exc.message}). Check that it "
            "exists and that the server's credentials may read and write it."
        ) from exc
    except Unavailable as exc:  # no answer, or a 5xx
        raise BlobStoreConfigError(
            f"CINEGEN_BLOB_URL={url}: the store cannot be reached ({exc.message}). Check "
            "CINEGEN_S3_ENDPOINT_URL / CINEGEN_GCS_ENDPOINT and the network."
        ) from exc
