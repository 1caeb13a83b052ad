"""Google Cloud Storage access for the Vertex dialect: `gcsUri` inputs and `storageUri` outputs.

Uses the `google-cloud-storage` client. With `CINEGEN_GCS_ENDPOINT` set (an emulator such as
fake-gcs-server, or any GCS-compatible endpoint) the client talks to that endpoint with
anonymous credentials; with `CINEGEN_GCS_USE_DEFAULT_CREDENTIALS=true` it talks to Google Cloud
Storage with Application Default Credentials. With neither, there is no GCS store and requests
that need one are refused with a clear 400.

The server's credentials may reach far more than any caller should: every `gs://` uri a
request names, read (`gcsUri`) or written (`storageUri`), must lie under one of
`CINEGEN_GCS_ALLOWED_PREFIXES` (`gs://bucket/` or `gs://bucket/prefix/`, comma-separated;
`*` for every bucket the credentials reach, for single-tenant servers). Empty, the default,
allows none. A uri outside the list, an object that does not exist and one the credentials
cannot read get the same answer ("… cannot be read." / "… cannot be written."), so a caller
learns nothing about what lies outside; the server log says which it was. (Per-key
allow-lists are for when keys get settings of their own.)

The client is built on first use: importing google-cloud-storage is slow, and
most servers never see a `gs://` uri.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from cinegen.core.errors import InvalidArgument, Unavailable
from cinegen.store.blobs import BUCKET_NAME, has_dot_segment

if TYPE_CHECKING:
    from cinegen.settings import Settings

# Bucket names: lower-case letters, digits, '-', '_' and '.' (GCS wants 3-222; one-letter
# names are allowed here because emulators and the SDK captures use them).
_GS_URI = re.compile(rf"^gs://({BUCKET_NAME})(?:/(.*))?$")
MAX_INPUT_BYTES = 200 * 1024 * 1024  # far above any image or extendable video
ALLOW_ALL = "*"

log = logging.getLogger("cinegen.store.gcs")


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


def cannot_read(uri: str) -> GcsError:
    """The one answer for a uri outside the allow-list, missing or unreadable."""
    return GcsError(f"The Cloud Storage object `{uri}` cannot be read.")


def cannot_write(uri: str) -> GcsError:
    """The one answer for a location outside the allow-list, missing or not writable."""
    return GcsError(f"The Cloud Storage location `{uri}` cannot be written.")


def parse_allowed_prefixes(entries: Iterable[str]) -> tuple[GsPath, ...] | None:
    """`CINEGEN_GCS_ALLOWED_PREFIXES` entries → folders (`gs://b` and `gs://b/p` mean `gs://b/`
    and `gs://b/p/`); None for `*` (everything). ValueError names a malformed entry."""
    prefixes: list[GsPath] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if entry == ALLOW_ALL:
            return None
        match = _GS_URI.match(entry)
        if not match or has_dot_segment(match.group(2) or ""):
            raise ValueError(
                f"CINEGEN_GCS_ALLOWED_PREFIXES: `{entry}` is not gs://BUCKET/ or "
                "gs://BUCKET/PREFIX/ (or * for every bucket)"
            )
        name = match.group(2) or ""
        prefixes.append(
            GsPath(match.group(1), name if not name or name.endswith("/") else name + "/")
        )
    return tuple(prefixes)


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
        self,
        *,
        endpoint: str | None,
        project: str | None,
        default_credentials: bool,
        allowed_prefixes: Iterable[str] = (),
    ) -> None:
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.project = project
        self.default_credentials = default_credentials
        self.allowed = parse_allowed_prefixes(allowed_prefixes)
        self._client: Any = None
        self._lock = threading.Lock()

    def allows(self, path: GsPath) -> bool:
        """Whether `path` (an object, or a folder ending in `/`) lies under an allowed prefix."""
        if has_dot_segment(path.name):
            return False
        if self.allowed is None:
            return True
        return any(
            path.bucket == prefix.bucket and path.name.startswith(prefix.name)
            for prefix in self.allowed
        )

    def check_writable(self, storage_uri: str) -> None:
        """A `storageUri` the samples may be written under, or the uniform GcsError."""
        if not self.allows(output_prefix(storage_uri)):
            log.warning("refused storageUri %s: outside CINEGEN_GCS_ALLOWED_PREFIXES", storage_uri)
            raise cannot_write(storage_uri)

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> Any:
        return gcs_client(self.endpoint, self.project)

    def read(self, uri: str, limit: int = MAX_INPUT_BYTES) -> bytes:
        """The object's bytes. Outside the allow-list, missing or unreadable: the one
        `cannot_read` GcsError (the log says which); too large: a GcsError that says so."""
        from google.api_core import exceptions as gexc

        path = parse_gs_uri(uri)
        if not path.name or path.name.endswith("/"):
            raise GcsError(f"`{uri}` names a folder, not an object.")
        if not self.allows(path):
            log.warning("refused gcsUri %s: outside CINEGEN_GCS_ALLOWED_PREFIXES", uri)
            raise cannot_read(uri)
        try:
            blob = self.client().bucket(path.bucket).get_blob(path.name)
            if blob is None:
                log.warning("refused gcsUri %s: no such object", uri)
                raise cannot_read(uri)
            if blob.size is not None and blob.size > limit:
                raise GcsError(f"The object `{uri}` is too large ({blob.size} bytes).")
            return blob.download_as_bytes()
        except gexc.ServerError as exc:
            log.warning("reading %s failed: %s", uri, _reason(exc))
            raise GcsUnavailable(
                f"Could not read `{uri}`: the storage service is unavailable."
            ) from exc
        except gexc.GoogleAPIError as exc:  # 404, 403, any other refusal: all alike
            log.warning("refused gcsUri %s: %s", uri, _reason(exc))
            raise cannot_read(uri) from exc
        except OSError as exc:  # connection refused, DNS: the store is unreachable
            raise GcsUnavailable(
                f"Could not read `{uri}`: the storage service is unreachable."
            ) from exc

    def write(self, uri: str, source: BinaryIO, content_type: str = "video/mp4") -> None:
        """Upload to `uri`. Outside the allow-list, no such bucket, not writable: the one
        `cannot_write` GcsError (the log says which)."""
        from google.api_core import exceptions as gexc

        path = parse_gs_uri(uri)
        if not self.allows(path):
            log.warning("refused write to %s: outside CINEGEN_GCS_ALLOWED_PREFIXES", uri)
            raise cannot_write(uri)
        try:
            blob = self.client().bucket(path.bucket).blob(path.name)
            blob.upload_from_file(source, content_type=content_type)
        except gexc.ServerError as exc:
            log.warning("writing %s failed: %s", uri, _reason(exc))
            raise GcsUnavailable(
                f"Could not write `{uri}`: the storage service is unavailable."
            ) from exc
        except gexc.GoogleAPIError as exc:
            log.warning("refused write to %s: %s", uri, _reason(exc))
            raise cannot_write(uri) from exc
        except OSError as exc:
            raise GcsUnavailable(
                f"Could not write `{uri}`: the storage service is unreachable."
            ) from exc


def gcs_client(endpoint: str | None, project: str | None) -> Any:
    """A google-cloud-storage client: on `endpoint` (an emulator) with anonymous credentials,
    else on Google Cloud Storage with Application Default Credentials."""
    from google.cloud import storage  # deferred: see the module docstring

    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=project or "cinegen",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint.rstrip("/")},
        )
    return storage.Client(project=project)


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.splitlines()[0][:300]


def gcs_store_from_settings(settings: Settings) -> GcsStore | None:
    """The configured store, or None when GCS is not configured."""
    if not settings.gcs_endpoint and not settings.gcs_use_default_credentials:
        return None
    store = GcsStore(
        endpoint=settings.gcs_endpoint,
        project=settings.gcs_project,
        default_credentials=settings.gcs_use_default_credentials,
        allowed_prefixes=settings.gcs_allowed_prefixes.split(","),
    )
    if store.allowed == ():
        log.warning(
            "CINEGEN_GCS_ALLOWED_PREFIXES is empty: every gcsUri input and storageUri output "
            "is refused; list the buckets or prefixes callers may use"
        )
    return store
