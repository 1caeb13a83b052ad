"""Blobs in a Cloud Storage bucket (`CINEGEN_BLOB_URL=gs://bucket/prefix`).

The client is store/gcs.py's: `CINEGEN_GCS_ENDPOINT` for an emulator (fake-gcs-server) with
anonymous credentials, else Application Default Credentials. An upload is whole or nothing
(GCS makes an object visible only once it is complete), so there are no partial writes to
sweep; an unfinished resumable upload expires on its own after a week. A read is a stream of
ranged reads of one object generation (`RangedReader`): a download with HTTP Range reads only
its range, and a blob replaced meanwhile reads as missing rather than as a mix of two.

Signed URLs (`CINEGEN_BLOB_REDIRECT`) need credentials that can sign (a service account key);
with others, an emulator's anonymous ones included, downloads are streamed instead.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
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

log = logging.getLogger("cinegen.store.gcs")

T = TypeVar("T")
RETRY_SECONDS = 15.0  # how long a call retries a store that does not answer
TIMEOUT = (5.0, 60.0)  # connect, read


class GcsBlobStore:
    """The BlobStore protocol on one bucket, under one prefix (`prefix` is "" or ends in /)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any,
        endpoint: str | None = None,
        signer: Any = None,
    ) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        self.endpoint = endpoint.rstrip("/") if endpoint else None  # signed URLs point there
        self.signer = signer  # credentials that sign URLs; default: the client's own
        self.bucket_name = bucket
        self.prefix = prefix
        self.client = client
        self.bucket = client.bucket(bucket)
        self.retry = DEFAULT_RETRY.with_timeout(RETRY_SECONDS)

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """Run one GCS call: a missing object is BlobMissing; no answer or a 5xx,
        BlobStoreUnavailable; any other refusal (no access, no bucket), StorageError."""
        import urllib3
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import TransportError

        try:
            return action()
        except gexc.NotFound as exc:
            raise BlobMissing(f"No blob {what}.") from exc
        except (gexc.ServerError, gexc.RetryError, gexc.TooManyRequests) as exc:
            log.warning("GCS %s failed: %s", what, exc)
            raise BlobStoreUnavailable("The blob store is unavailable; try again later.") from exc
        except gexc.GoogleAPIError as exc:
            log.warning("GCS refused %s: %s", what, exc)
            raise StorageError(f"The blob store refused {what}.") from exc
        except (OSError, TransportError, urllib3.exceptions.HTTPError) as exc:
            log.warning("GCS %s failed: %s", what, exc)
            raise BlobStoreUnavailable(
                "The blob store cannot be reached; try again later."
            ) from exc

    def check(self) -> None:
        """The bucket exists and these credentials reach it."""
        self._call(
            f"bucket {self.bucket_name}",
            lambda: self.bucket.reload(retry=self.retry, timeout=TIMEOUT),
        )

    def _get(self, key: str) -> Any:
        name = cloud_key(self.prefix, key)
        blob = self._call(
            key, lambda: self.bucket.get_blob(name, retry=self.retry, timeout=TIMEOUT)
        )
        if blob is None:
            raise BlobMissing(f"No blob {key}.")
        return blob

    def write(self, key: str, source: bytes | Path) -> None:
        blob = self.bucket.blob(cloud_key(self.prefix, key))
        kind = media_type_of(key)
        if isinstance(source, Path):
            self._call(
                key,
                lambda: blob.upload_from_filename(
                    str(source), content_type=kind, retry=self.retry, timeout=TIMEOUT
                ),
            )
            source.unlink(missing_ok=True)  # written means moved in, as on a local disk
        else:
            self._call(
                key,
                lambda: blob.upload_from_string(
                    source, content_type=kind, retry=self.retry, timeout=TIMEOUT
                ),
            )

    def open(self, key: str) -> BinaryIO:
        found = self._get(key)
        pinned = self.bucket.blob(found.name, generation=found.generation)

        def fetch(first: int, last: int) -> bytes:
            data: bytes = self._call(
                key,
                lambda: pinned.download_as_bytes(
                    start=first, end=last, checksum=None, retry=self.retry, timeout=TIMEOUT
                ),
            )
            return data

        def opener(first: int, last: int) -> CheckedBody:
            return self._open_range(key, found.media_link, first, last)

        size = int(found.size or 0)
        media = getattr(found, "media_link", None)
        return RangedReader(fetch, size, opener=opener if media else None).as_binary()

    def _open_range(self, key: str, media_link: str, first: int, last: int) -> CheckedBody:
        """One streamed ranged GET of the object's media link (it names the generation):
        a download reads on in it instead of asking for each block."""
        session = self.client._http  # the client's authorized session  # noqa: SLF001
        answer = self._call(
            key,
            lambda: session.get(
                media_link, headers={"Range": f"bytes={first}-{last}"}, stream=True, timeout=TIMEOUT
            ),
        )
        if answer.status_code not in (200, 206):
            answer.close()
            raise _status_error(key, answer.status_code)
        raw = answer.raw
        return CheckedBody(
            self._call, key, lambda size: raw.read(size, decode_content=True), answer.close
        )

    def size(self, key: str) -> int:
        return int(self._get(key).size or 0)

    def exists(self, key: str) -> bool:
        try:
            self._get(key)
        except BlobMissing:
            return False
        return True

    def delete(self, key: str) -> None:
        blob = self.bucket.blob(cloud_key(self.prefix, key))
        with contextlib.suppress(BlobMissing):
            self._call(key, lambda: blob.delete(retry=self.retry, timeout=TIMEOUT))

    def _objects(self, folder: str) -> Iterator[Any]:
        return iter(
            self._call(
                folder,
                lambda: list(
                    self.client.list_blobs(
                        self.bucket_name, prefix=folder, retry=self.retry, timeout=TIMEOUT
                    )
                ),
            )
        )

    def delete_prefix(self, prefix: str) -> None:
        folder = cloud_key(self.prefix, prefix.rstrip("/")) + "/"
        for blob in self._objects(folder):
            with contextlib.suppress(BlobMissing):
                self._call(blob.name, lambda blob=blob: blob.delete(retry=self.retry))  # type: ignore[misc]

    def children(self, prefix: str, *, older_than: float = 0.0) -> list[str]:
        folder = cloud_key(self.prefix, prefix.rstrip("/")) + "/"
        newest = newest_by_child(
            ((blob.name, _modified(blob)) for blob in self._objects(folder)), folder
        )
        cutoff = time.time() - older_than
        return sorted(name for name, modified in newest.items() if modified <= cutoff)

    def sweep_partial(self, *, older_than: float) -> int:
        return 0  # no partial objects on GCS (see the module docstring)

    def free_bytes(self) -> int | None:
        return None  # a bucket has no free space to tell

    def presigned_url(
        self, key: str, *, seconds: int, filename: str, media_type: str
    ) -> str | None:
        """A V4 signed GET URL, where the credentials can sign; None (stream) otherwise."""
        from google.auth.credentials import Signing

        credentials = self.signer or getattr(self.client, "_credentials", None)
        if not isinstance(credentials, Signing):
            return None
        blob = self.bucket.blob(cloud_key(self.prefix, key))
        extra = {"api_access_endpoint": self.endpoint} if self.endpoint else {}
        url: str = self._call(
            key,
            lambda: blob.generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=seconds),
                method="GET",
                credentials=credentials,
                response_type=media_type,
                response_disposition=f'inline; filename="{filename}"',
                **extra,
            ),
        )
        return url


def _modified(blob: Any) -> float:
    updated = blob.updated or blob.time_created
    return updated.timestamp() if updated is not None else time.time()


def _status_error(key: str, status: int) -> Exception:
    """The typed error for an HTTP status of a media GET."""
    if status in (404, 412):  # gone, or that generation replaced
        return BlobMissing(f"No blob {key}.")
    if status >= 500 or status == 429:
        log.warning("GCS %s failed: HTTP %d", key, status)
        return BlobStoreUnavailable("The blob store is unavailable; try again later.")
    log.warning("GCS refused %s: HTTP %d", key, status)
    return StorageError(f"The blob store refused {key}: HTTP {status}.")
