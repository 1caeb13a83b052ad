"""Blobs in an S3 bucket (`CINEGEN_BLOB_URL=s3://bucket/prefix`), through boto3.

`CINEGEN_S3_ENDPOINT_URL` points it at an S3-compatible store (MinIO, Ceph, moto); the
credentials and region come from boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
AWS_PROFILE, an instance role). A write is whole or nothing (a PUT, or a multipart upload that
S3 assembles only when complete), so there are no partial files: the sweep of partial writes
aborts the multipart uploads a killed process left instead. A read is a stream of ranged GETs
(`RangedReader`), so a download with HTTP Range fetches only that range. A missing object is
`BlobMissing`; a store that cannot be reached, or answers 5xx, `BlobStoreUnavailable` (503).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from cinegen.core.errors import StorageError
from cinegen.store.blobs import (
    BlobMissing,
    BlobStoreUnavailable,
    CheckedBody,
    RangedReader,
    cloud_key,
    media_type_of,
    newest_by_child,
)

log = logging.getLogger("cinegen.store.s3")

T = TypeVar("T")
# PreconditionFailed: the object was replaced while a stream read it (If-Match its ETag).
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "PreconditionFailed", "412"})
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
MULTIPART_THRESHOLD = 64 << 20


def s3_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client with the usual credential chain, short connect timeouts and a few
    retries: an unreachable store answers 503 in seconds, not minutes."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=config)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _translated(what: str, exc: BaseException) -> Exception:
    """The typed error for a boto3 failure. upload_file wraps the failing call's error in an
    S3UploadFailedError: the cause decides, as for a direct call."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import ClientError

    if isinstance(exc, Boto3Error):
        cause = exc.__cause__ or exc.__context__
        if cause is not None and cause is not exc:
            return _translated(what, cause)
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _MISSING_CODES:
            return BlobMissing(f"No blob {what}.")
        if _status(exc) < 500 and code not in {"SlowDown", "ServiceUnavailable"}:
            log.warning("S3 refused %s: %s", what, exc)
            return StorageError(f"The blob store refused {what}: {code}.")
        log.warning("S3 %s failed: %s", what, exc)
        return BlobStoreUnavailable("The blob store is unavailable; try again later.")
    log.warning("S3 %s failed: %s", what, exc)
    return BlobStoreUnavailable("The blob store cannot be reached; try again later.")


class S3BlobStore:
    """The BlobStore protocol on one bucket, under one prefix (`prefix` is "" or ends in /)."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client = client if client is not None else s3_client(None)

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """Run one S3 call: a missing object is BlobMissing; no answer or a 5xx,
        BlobStoreUnavailable; any other refusal (no access, no bucket), StorageError."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action()
        except (ClientError, BotoCoreError, OSError, Boto3Error) as exc:
            raise _translated(what, exc) from exc

    def check(self) -> None:
        """The bucket exists and these credentials reach it (HeadBucket)."""
        self._call(f"bucket {self.bucket}", lambda: self.client.head_bucket(Bucket=self.bucket))

    def write(self, key: str, source: bytes | Path) -> None:
        name = cloud_key(self.prefix, key)
        extra = {"ContentType": media_type_of(key)}
        if isinstance(source, Path):
            from boto3.s3.transfer import TransferConfig

            transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD)
            self._call(
                key,
                lambda: self.client.upload_file(
                    str(source), self.bucket, name, ExtraArgs=extra, Config=transfer
                ),
            )
            source.unlink(missing_ok=True)  # written means moved in, as on a local disk
        else:
            self._call(
                key,
                lambda: self.client.put_object(Bucket=self.bucket, Key=name, Body=source, **extra),
            )

    def open(self, key: str) -> BinaryIO:
        name = cloud_key(self.prefix, key)
        head = self._call(key, lambda: self.client.head_object(Bucket=self.bucket, Key=name))
        etag = head.get("ETag")

        def opener(first: int, last: int) -> CheckedBody:
            extra = {"IfMatch": etag} if etag else {}
            answer = self._call(
                key,
                lambda: self.client.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={first}-{last}", **extra
                ),
            )
            body = answer["Body"]
            return CheckedBody(self._call, key, body.read, body.close)

        def fetch(first: int, last: int) -> bytes:
            with contextlib.closing(opener(first, last)) as body:
                return body.read()

        size = int(head["ContentLength"])
        return RangedReader(fetch, size, opener=opener).as_binary()

    def size(self, key: str) -> int:
        name = cloud_key(self.prefix, key)
        head = self._call(key, lambda: self.client.head_object(Bucket=self.bucket, Key=name))
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobMissing:
            return False
        return True

    def delete(self, key: str) -> None:
        name = cloud_key(self.prefix, key)
        self._call(key, lambda: self.client.delete_object(Bucket=self.bucket, Key=name))

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(
            prefix, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix))
        )
        for page in pages:
            yield from page.get("Contents", [])

    def delete_prefix(self, prefix: str) -> None:
        folder = cloud_key(self.prefix, prefix.rstrip("/")) + "/"
        names = [item["Key"] for item in self._objects(folder)]
        for start in range(0, len(names), _DELETE_BATCH):
            batch = [{"Key": name} for name in names[start : start + _DELETE_BATCH]]
            self._call(
                prefix,
                lambda batch=batch: self.client.delete_objects(  # type: ignore[misc]
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                ),
            )

    def children(self, prefix: str, *, older_than: float = 0.0) -> list[str]:
        folder = cloud_key(self.prefix, prefix.rstrip("/")) + "/"
        newest = newest_by_child(
            ((item["Key"], item["LastModified"].timestamp()) for item in self._objects(folder)),
            folder,
        )
        cutoff = time.time() - older_than
        return sorted(name for name, modified in newest.items() if modified <= cutoff)

    def sweep_partial(self, *, older_than: float) -> int:
        """Abort the multipart uploads under the prefix begun `older_than` seconds ago or more
        (a process killed mid-upload leaves their parts, billed, out of any listing)."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        pages = self._call(
            "uploads",
            lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)),
        )
        cutoff = time.time() - older_than
        aborted = 0
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() > cutoff:
                    continue
                with contextlib.suppress(BlobMissing):
                    self._call(
                        upload["Key"],
                        lambda upload=upload: self.client.abort_multipart_upload(  # type: ignore[misc]
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        ),
                    )
                    aborted += 1
        return aborted

    def free_bytes(self) -> int | None:
        return None  # a bucket has no free space to tell

    def presigned_url(
        self, key: str, *, seconds: int, filename: str, media_type: str
    ) -> str | None:
        """A presigned GET (no network call: signed here), with the download's type and name."""
        params = {
            "Bucket": self.bucket,
            "Key": cloud_key(self.prefix, key),
            "ResponseContentType": media_type,
            "ResponseContentDisposition": f'inline; filename="{filename}"',
        }
        url: str = self._call(
            key,
            lambda: self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=seconds
            ),
        )
        return url
