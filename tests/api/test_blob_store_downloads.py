"""cinegen with its videos in S3 (`CINEGEN_BLOB_URL=s3://…`, moto_server on loopback): made,
downloaded whole and by HTTP Range (only the range is fetched from the store), through the
google-genai SDK, used as an extension input and for thumbnails (decoders seek in the remote
stream), deleted from the bucket by the retention and orphan sweeps; and with
`CINEGEN_BLOB_REDIRECT=true`, answered by a redirect to a presigned URL that never carries the
caller's API key to the store's origin (a recording proxy in front of moto shows what reached
it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

from cinegen.store.db import utcnow
from tests.helpers import generate, sample_uris, text_request, video_facts
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.s3 import AWS_ENV, RecordingProxy, S3Server, moto_s3  # noqa: F401
from tests.support.server import ServerProcess

PREFIX = "cinegen/"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_app(
    moto_s3: S3Server,  # noqa: F811
    aws_env: None,
    tmp_path: Path,
) -> Iterator[tuple[InProcessServer, str]]:
    bucket = moto_s3.bucket()
    with in_process(
        tmp_path, blob_url=f"s3://{bucket}/{PREFIX}", s3_endpoint_url=moto_s3.url, workers=1
    ) as server:
        yield server, bucket


def record_ranges(server: InProcessServer) -> list[str]:
    """The Range header of every GetObject the server's S3 client sends from now on."""
    seen: list[str] = []

    def hook(request: Any, **_: Any) -> None:
        value = request.headers.get("Range", b"")
        seen.append(value.decode() if isinstance(value, bytes) else str(value))

    server.runtime.service.files.blobs.client.meta.events.register("before-send.s3.GetObject", hook)
    return seen


def file_id(uri: str) -> str:
    return uri.split("files/")[1].split(":")[0]


def test_videos_live_in_the_bucket_and_download_by_range(
    s3_app: tuple[InProcessServer, str],
    moto_s3: S3Server,  # noqa: F811
) -> None:
    server, bucket = s3_app
    with server.client() as client:
        op = generate(client, text_request("a lighthouse at dusk"))
        uri = sample_uris(op)[0]
        key = f"{PREFIX}videos/{file_id(uri)}.mp4"
        assert key in moto_s3.keys(bucket)
        assert not list((server.settings.resolved_blob_dir / "videos").glob("*.mp4"))
        stored = moto_s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()

        ranges = record_ranges(server)
        whole = client.get(uri)
        assert whole.status_code == 200
        assert whole.content == stored
        assert ranges == [f"bytes=0-{len(stored) - 1}"]  # one GET, read on, not one per chunk

        ranges.clear()
        part = client.get(uri, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(stored)}"
        assert part.content == stored[100:200]
        assert ranges == ["bytes=100-199"]  # only the range left the store

        tail = client.get(uri, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == stored[-10:]
        past = client.get(uri, headers={"Range": f"bytes={len(stored)}-"})
        assert past.status_code == 416
        assert past.json()["error"]["code"] == 416


def test_the_sdk_downloads_from_the_bucket(s3_app: tuple[InProcessServer, str]) -> None:
    server, _bucket = s3_app
    sdk = genai.Client(
        api_key="anything",
        http_options=types.HttpOptions(base_url=server.url, httpx_client=server.client()),
    )
    with server.client() as client:
        op = generate(client, text_request("a kite over the sea"))
        expected = client.get(sample_uris(op)[0]).content
    video = types.Video(uri=sample_uris(op)[0])
    assert sdk.files.download(file=video) == expected


def test_extension_and_thumbnail_read_the_remote_video(
    s3_app: tuple[InProcessServer, str], tmp_path: Path
) -> None:
    server, _bucket = s3_app
    with server.client() as client:
        op = generate(client, text_request("a paper boat", durationSeconds=4))
        uri = sample_uris(op)[0]
        ext = generate(client, {"instances": [{"prompt": "it sails on", "video": {"uri": uri}}]})
        out = tmp_path / "ext.mp4"
        out.write_bytes(client.get(sample_uris(ext)[0]).content)
        assert video_facts(out).frames == (4 + 7) * 24
        thumb = client.get(
            f"/v1/videos/{op_id(op['name'])}/content", params={"variant": "thumbnail"}
        )
        assert thumb.status_code == 200, thumb.text
        assert thumb.headers["content-type"].startswith("image/")


def test_sweeps_delete_from_the_bucket(
    s3_app: tuple[InProcessServer, str],
    moto_s3: S3Server,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, bucket = s3_app
    files = server.runtime.service.files
    with server.client() as client:
        op = generate(client, text_request("a snowy street"))
        uri = sample_uris(op)[0]
        server.db.touch_file(file_id(uri), utcnow() - timedelta(seconds=1))
        assert files.sweep_expired() == 1
        assert f"{PREFIX}videos/{file_id(uri)}.mp4" not in moto_s3.keys(bucket)
        gone = client.get(uri)
        assert gone.status_code == 404
        assert "expired" in gone.json()["error"]["message"]

    files.blobs.write("inputs/0123456789abcdef/image.png", b"left by a killed submit")
    monkeypatch.setattr("cinegen.service.files.ORPHAN_AGE_SECONDS", 0.0)
    assert files.sweep_orphans() >= 1
    assert not [k for k in moto_s3.keys(bucket) if "0123456789abcdef" in k]


def test_an_unreachable_store_is_503_not_a_stack_trace(
    s3_app: tuple[InProcessServer, str],
    moto_s3: S3Server,  # noqa: F811
) -> None:
    from cinegen.store.s3 import s3_client

    server, bucket = s3_app
    files = server.runtime.service.files
    with server.client() as client:
        op = generate(client, text_request("a red fox"))
        uri = sample_uris(op)[0]
        kept = files.blobs.client
        files.blobs.client = s3_client("http://127.0.0.1:9")  # nothing listens there
        try:
            answer = client.get(uri)
        finally:
            files.blobs.client = kept
    assert answer.status_code == 503
    assert answer.json()["error"]["status"] == "UNAVAILABLE"


# -- redirect mode: a real server process, the store behind a recording proxy ----------------


@pytest.fixture(scope="module")
def redirect_server(
    moto_s3: S3Server,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, RecordingProxy]]:
    bucket = moto_s3.bucket()
    proxy = RecordingProxy(moto_s3.url).start()
    proc = ServerProcess(
        tmp_path_factory.mktemp("redirect"),
        env_extra={
            **AWS_ENV,
            "CINEGEN_BLOB_URL": f"s3://{bucket}/{PREFIX}",
            "CINEGEN_S3_ENDPOINT_URL": proxy.url,
            "CINEGEN_BLOB_REDIRECT": "true",
            "CINEGEN_BLOB_REDIRECT_SECONDS": "60",
            "CINEGEN_WORKERS": "1",
        },
    )
    proc.start()
    yield proc, proxy
    proc.stop()
    proxy.stop()


def _leaked(proxy: RecordingProxy, secret: str) -> list[str]:
    return [
        f"{seen.method} {seen.path}"
        for seen in proxy.seen
        if secret in seen.path or any(secret in value for value in seen.headers.values())
    ]


def test_redirect_to_a_presigned_url_leaves_the_key_behind(
    redirect_server: tuple[ServerProcess, RecordingProxy],
) -> None:
    server, proxy = redirect_server
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
        op = generate(client, text_request("a harbour at night"))
        uri = sample_uris(op)[0]
    path = "/" + uri.split("/", 3)[3]  # /v1beta/files/<id>:download?alt=media
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as plain:
        first = plain.get(path, params={"key": "query-secret-1"})
    assert first.status_code == 307, first.text
    assert first.headers["location"].startswith(proxy.url + "/")
    assert first.headers["cache-control"] == "no-store"

    with httpx.Client(base_url=server.url, timeout=60, trust_env=False, follow_redirects=True) as c:
        whole = c.get(path, params={"key": "query-secret-1"})
        part = c.get(path, params={"key": "query-secret-1"}, headers={"Range": "bytes=100-199"})
        bearer = c.get(path, headers={"Authorization": "Bearer bearer-secret-2"})
    assert whole.status_code == 200 and whole.history[0].status_code == 307
    assert whole.content[4:8] == b"ftyp"
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert bearer.status_code == 200 and bearer.content == whole.content
    assert bearer.history and bearer.history[0].status_code == 307
    assert _leaked(proxy, "query-secret-1") == []
    assert _leaked(proxy, "bearer-secret-2") == []
    assert any("X-Amz-Signature=" in seen.path for seen in proxy.seen)  # the presigned GETs


def test_the_sdk_download_is_streamed_so_its_key_never_reaches_the_store(
    redirect_server: tuple[ServerProcess, RecordingProxy],
) -> None:
    """The SDK sends `x-goog-api-key` again to a redirect's target, on any origin: for it the
    server streams, and the download still works."""
    server, proxy = redirect_server
    sdk = genai.Client(
        api_key="sdk-secret-3",
        http_options=types.HttpOptions(base_url=server.url, client_args={"trust_env": False}),
    )
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
        op = generate(client, text_request("a lantern in the fog"))
        uri = sample_uris(op)[0]
        data = sdk.files.download(file=types.Video(uri=uri))
        assert _leaked(proxy, "sdk-secret-3") == []
        direct = client.get("/" + uri.split("/", 3)[3], headers={"x-goog-api-key": "sdk-secret-3"})
    assert direct.status_code == 200  # streamed, not redirected
    assert data == direct.content and data[4:8] == b"ftyp"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # client.videos is marked deprecated
def test_the_openai_sdk_follows_the_redirect_without_its_key(
    redirect_server: tuple[ServerProcess, RecordingProxy],
) -> None:
    """The OpenAI SDK sends its key as `Authorization: Bearer`, which httpx drops on a
    cross-origin redirect: its download goes to the store, and the key does not."""
    import openai

    server, proxy = redirect_server
    before = len(proxy.seen)
    sdk = openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key="openai-secret-4",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )
    video = sdk.videos.create_and_poll(
        model="veo-3.1-fast-generate-preview", prompt="a tram in the rain", seconds="4"
    )
    assert video.status == "completed"
    data = sdk.videos.download_content(video.id).content
    assert data[4:8] == b"ftyp"
    presigned = [s for s in proxy.seen[before:] if "X-Amz-Signature=" in s.path]
    assert presigned, "the download did not go to the store"
    assert _leaked(proxy, "openai-secret-4") == []


def test_a_job_whose_store_is_unreachable_fails_unavailable(
    moto_s3: S3Server,  # noqa: F811
    aws_env: None,
    tmp_path: Path,
) -> None:
    """The video cannot be stored: the operation ends with UNAVAILABLE (14) and says why."""
    from cinegen.store.s3 import s3_client

    bucket = moto_s3.bucket()
    settings = {"blob_url": f"s3://{bucket}/p", "s3_endpoint_url": moto_s3.url}
    with in_process(tmp_path, workers=1, max_attempts=1, **settings) as server:
        server.runtime.service.files.blobs.client = s3_client("http://127.0.0.1:9")
        with server.client() as client:
            op = generate(client, text_request("a lost video"))
    assert op["error"] == {
        "code": 14,
        "message": "The blob store cannot be reached; try again later.",
    }
    assert moto_s3.keys(bucket) == []
