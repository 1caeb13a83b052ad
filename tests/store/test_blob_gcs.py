"""What is Cloud Storage's own in the GCS blob store (the shared contract is
test_blob_contract.py), against fake-gcs-server: chosen by a gs:// `CINEGEN_BLOB_URL`, a whole
app storing and serving its videos there (with Range, and streamed in redirect mode since
anonymous credentials cannot sign), a sample exported to a `storageUri` straight from the
remote stream, and an unreachable store as 503."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from cinegen.store.blob_urls import blob_store_from_settings
from cinegen.store.blobs import BlobStoreConfigError, BlobStoreUnavailable
from cinegen.store.gcs import GcsStore, gcs_client
from cinegen.store.gcs_blobs import GcsBlobStore
from tests.api.vertex.support import GcsEmulator, gcs  # noqa: F401 - the fixture
from tests.helpers import generate, sample_uris, text_request
from tests.support.app import in_process, settings_for


def new_bucket(emulator: GcsEmulator) -> str:
    name = f"blobs-{uuid.uuid4().hex[:12]}"
    emulator.make_bucket(name)
    return name


def gcs_settings(emulator: GcsEmulator, bucket: str) -> dict[str, object]:
    return {
        "blob_url": f"gs://{bucket}/cinegen",
        "gcs_endpoint": emulator.url,
        "gcs_project": emulator.project,
    }


def test_a_gs_url_chooses_the_gcs_store(gcs: GcsEmulator, tmp_path: Path) -> None:  # noqa: F811
    bucket = new_bucket(gcs)
    store = blob_store_from_settings(settings_for(tmp_path, **gcs_settings(gcs, bucket)))
    assert isinstance(store, GcsBlobStore) and store.prefix == "cinegen/"
    store.write("videos/a.mp4", b"abc")
    assert gcs.get(f"gs://{bucket}/cinegen/videos/a.mp4") == b"abc"
    missing = settings_for(tmp_path, **gcs_settings(gcs, "no-such-bucket-here"))
    with pytest.raises(BlobStoreConfigError, match="cannot be used"):
        blob_store_from_settings(missing)


def test_an_app_on_gcs_serves_ranges_and_streams_without_signing(
    gcs: GcsEmulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    bucket = new_bucket(gcs)
    settings = {**gcs_settings(gcs, bucket), "blob_redirect": True, "workers": 1}
    with in_process(tmp_path, **settings) as server, server.client() as client:
        op = generate(client, text_request("a windmill"))
        uri = sample_uris(op)[0]
        file_id = uri.split("files/")[1].split(":")[0]
        stored = gcs.get(f"gs://{bucket}/cinegen/videos/{file_id}.mp4")
        part = client.get(uri, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206  # no signing credentials: streamed, not redirected
        assert part.content == stored[100:200]
        assert client.get(uri).content == stored
        assert client.get("/readyz").status_code == 200  # the probe blob goes to GCS too


def test_a_sample_is_exported_from_the_remote_stream(gcs: GcsEmulator) -> None:  # noqa: F811
    bucket = new_bucket(gcs)
    store = GcsBlobStore(bucket, "", client=gcs.client())
    data = bytes(range(256)) * 5000
    store.write("videos/s.mp4", data)
    exporter = GcsStore(
        endpoint=gcs.url, project=gcs.project, default_credentials=False, allowed_prefixes=["*"]
    )
    with store.open("videos/s.mp4") as stream:
        exporter.write(f"gs://{bucket}/out/op/sample_0.mp4", stream)
    assert gcs.get(f"gs://{bucket}/out/op/sample_0.mp4") == data


def test_an_unreachable_store_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cinegen.store.gcs_blobs.RETRY_SECONDS", 1.0)
    store = GcsBlobStore("bucket", "", client=gcs_client("http://127.0.0.1:9", "p"))
    with pytest.raises(BlobStoreUnavailable):
        store.open("videos/a.mp4")
    with pytest.raises(BlobStoreUnavailable):
        store.write("videos/a.mp4", b"x")


def signing_credentials() -> Any:
    """Service-account credentials with a fresh key: they sign URLs here, with no network
    (their token URI is never called: requests go through the anonymous client)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "client_email": "cinegen@tests.iam.gserviceaccount.com",
        "private_key": pem,
        "token_uri": "http://127.0.0.1:9/token",
        "project_id": "cinegen-tests",
    }
    return service_account.Credentials.from_service_account_info(info)


def test_with_signing_credentials_downloads_redirect_to_a_signed_url(
    gcs: GcsEmulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    bucket = new_bucket(gcs)
    settings = {**gcs_settings(gcs, bucket), "blob_redirect": True, "workers": 1}
    with in_process(tmp_path, **settings) as server, server.client() as client:
        server.runtime.service.files.blobs.signer = signing_credentials()
        op = generate(client, text_request("a ferris wheel"))
        uri = sample_uris(op)[0]
        moved = client.get(uri, params={"key": "query-secret"})
        assert moved.status_code == 307, moved.text
        location = moved.headers["location"]
        assert location.startswith(f"{gcs.url}/{bucket}/cinegen/videos/")
        assert "X-Goog-Signature=" in location and "query-secret" not in location
        streamed = client.get(uri, headers={"x-goog-api-key": "header-secret"})
        assert streamed.status_code == 200  # a key that would follow: streamed
    part = httpx.get(location, headers={"Range": "bytes=100-199"}, trust_env=False)
    assert part.status_code == 206
    assert part.content == streamed.content[100:200]
