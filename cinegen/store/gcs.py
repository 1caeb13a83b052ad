"""Google Cloud Storage access for the Vertex dialect: `gcsUri` inputs and `storageUri` outputs.

Uses the `google-cloud-storage` client. With `CINEGEN_GCS_ENDPOINT` set (an emulator such as
fake-gcs-server, or any GCS-compatible endpoint) the client talks to that endpoint with
anonymous credentials; with `CINEGEN_GCS_USE_DEFAULT_CREDENTIALS=true` it talks to Google Cloud
Storage with Application Default Credentials. With neither, there is no GCS store and requests
that need one are refused with a clear 400.

The client is built on first use: importing google-cloud-storage is slow, and
most servers never see a `gs://` uri.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from cinegen.core.errors import InvalidArgument, Unavailable

if TYPE_CHECKING:
    from cinegen.settings import Settings

# Bucket names: lower-case letters, digits, '-', '_' and '.' (GCS wants 3-222; one-letter
# names are allowed here because emulators and the SDK captures use them).
_GS_URI = re.compile(r"^gs://([a-z0-9](?:[a-z0-9._-]{0,220}[a-z0-9])?)(?:/(.*))?$")
MAX_INPUT_BYTES = 200 * 1024 * 1024  # far above any image or extendable video


class GcsError(InvalidArgument):
    """A `gs://` uri the caller sent that cannot be read or written (malformed, no such
    bucket or object, too large): the caller's to fix."""


class GcsUnavailable(Unavailable):
    """The storage service could not be reached: the server's side, and maybe passing."""


@dataclass(frozen=True)
class GsPath:
    bucket: str
    name: str  # object name or prefix; may be ""

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def parse_gs_uri(uri: str) -> GsPath:
    """`gs://bucket/path` → GsPath; GcsError with a readable reason otherwise."""
    match = _GS_URI.match(uri.strip())
    if not match:
        raise GcsError(f"`{uri}` is not a valid Cloud Storage uri (expected gs://BUCKET/PATH).")
    return GsPath(match.group(1), match.group(2) or "")


def output_prefix(storage_uri: str) -> GsPath:
    """The folder a `storageUri` names: `gs://b/out` and `gs://b/out/` both mean `out/`."""
    path = parse_gs_uri(storage_uri)
    name = path.name if not path.name or path.name.endswith("/") else path.name + "/"
    return GsPath(path.bucket, name)


def sample_uri(storage_uri: str, op_id: str, index: int) -> str:
    """Where sample `index` of operation `op_id` goes: `<storageUri>/<op id>/sample_<i>.mp4`.

    One sub-folder per operation, as Vertex writes one timestamped sub-folder per request.
    """
    prefix = output_prefix(storage_uri)
    return f"gs://{prefix.bucket}/{prefix.name}{op_id}/sample_{index}.mp4"


class GcsStore:
    """Reads inputs from and writes outputs to GCS through google-cloud-storage."""

    def __init__(
        self, *, endpoint: str | None, project: str | None, default_credentials: bool
    ) -> None:
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.project = project
        self.default_credentials = default_credentials
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> Any:
        from google.cloud import storage  # deferred: see the module docstring

        if self.endpoint:
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(
                project=self.project or "cinegen",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self.endpoint},
            )
        return storage.Client(project=self.project)

    def read(self, uri: str, limit: int = MAX_INPUT_BYTES) -> bytes:
        """The object's bytes; GcsError when it is missing, unreadable or too large."""
        from google.api_core import exceptions as gexc

        path = parse_gs_uri(uri)
        if not path.name or path.name.endswith("/"):
            raise GcsError(f"`{uri}` names a folder, not an object.")
        try:
            blob = self.client().bucket(path.bucket).get_blob(path.name)
            if blob is None:
                raise GcsError(f"The object `{uri}` does not exist.")
            if blob.size is not None and blob.size > limit:
                raise GcsError(f"The object `{uri}` is too large ({blob.size} bytes).")
            return blob.download_as_bytes()
        except gexc.NotFound as exc:
            raise GcsError(f"The object `{uri}` does not exist.") from exc
        except gexc.GoogleAPIError as exc:
            raise GcsError(f"Could not read `{uri}`: {_reason(exc)}") from exc
        except OSError as exc:  # connection refused, DNS: the store is unreachable
            raise GcsUnavailable(
                f"Could not read `{uri}`: the storage service is unreachable."
            ) from exc

    def write(self, uri: str, source: BinaryIO, content_type: str = "video/mp4") -> None:
        from google.api_core import exceptions as gexc

        path = parse_gs_uri(uri)
        try:
            blob = self.client().bucket(path.bucket).blob(path.name)
            blob.upload_from_file(source, content_type=content_type)
        except gexc.NotFound as exc:
            raise GcsError(
                f"Could not write `{uri}`: the bucket `{path.bucket}` does not exist."
            ) from exc
        except gexc.GoogleAPIError as exc:
            raise GcsError(f"Could not write `{uri}`: {_reason(exc)}") from exc
        except OSError as exc:
            raise GcsUnavailable(
                f"Could not write `{uri}`: the storage service is unreachable."
            ) from exc


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.splitlines()[0][:300]


def gcs_store_from_settings(settings: Settings) -> GcsStore | None:
    """The configured store, or None when GCS is not configured."""
    if not settings.gcs_endpoint and not settings.gcs_use_default_credentials:
        return None
    return GcsStore(
        endpoint=settings.gcs_endpoint,
        project=settings.gcs_project,
        default_credentials=settings.gcs_use_default_credentials,
    )
