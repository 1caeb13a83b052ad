"""The OpenAI Python SDK's Videos client (openai==3.54.0, pinned in pyproject) against cinegen.

3.54 sends every create as multipart with bracket-named fields and string values; these
tests use the SDK as a user would (`extra_body` for the gateway's `images` / `metadata`,
`input_reference` as a file) and check what the server made of it.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from tests.api.videos.support import (
    BLUE_PNG,
    RED_PNG,
    FlakyProxy,
    ImageServer,
    b64,
    operation_name,
    videos_server,
)
from tests.helpers import decode_png, first_and_last_frames, psnr
from tests.support.server import ServerProcess

pytestmark = [
    pytest.mark.xdist_group("videos_openai"),
    # every client.videos method is marked deprecated ("The Sora API is scheduled to shut down")
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

FAST = "veo-3.1-fast-generate-preview"
STANDARD = "veo-3.1-generate-preview"
POLL_TIMEOUT = 240.0


def test_sdk_is_the_pinned_version() -> None:
    assert openai.__version__ == "3.54.0"


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with ImageServer() as server:
        yield server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with videos_server(tmp_path_factory.mktemp("videos_openai")) as proc:
        yield proc


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """No worker: videos stay queued (list, delete and idempotency need no rendering)."""
    with videos_server(tmp_path_factory.mktemp("videos_idle"), CINEGEN_WORKERS="0") as proc:
        yield proc


def sdk(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key="anything",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


@pytest.fixture(scope="module")
def client(srv: ServerProcess) -> openai.OpenAI:
    return sdk(srv)


@pytest.fixture(scope="module")
def idle_client(idle: ServerProcess) -> openai.OpenAI:
    return sdk(idle)


@pytest.fixture(scope="module")
def rest(srv: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=60, trust_env=False) as http:
        yield http


def poll(client: openai.OpenAI, video_id: str) -> Any:
    """`client.videos.poll`, bounded (the SDK's own loop has no timeout)."""
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(video=client.videos.poll(video_id)))
    worker.start()
    worker.join(POLL_TIMEOUT)
    assert "video" in result, f"poll({video_id}) did not end in {POLL_TIMEOUT} s"
    return result["video"]


@pytest.fixture(scope="module")
def finished(client: openai.OpenAI) -> Any:
    """One completed 4 s video, made with create_and_poll."""
    return client.videos.create_and_poll(
        model=FAST, prompt="a lighthouse at dusk, waves", seconds="4", size="1280x720"
    )


def test_create_and_poll_ends_on_completion(finished: Any, rest: httpx.Client) -> None:
    assert finished.status == "completed"
    assert finished.progress == 100
    assert (finished.model, finished.seconds, finished.size) == (FAST, "4", "1280x720")
    assert finished.prompt == "a lighthouse at dusk, waves"
    assert finished.completed_at >= finished.created_at
    assert finished.expires_at > finished.completed_at
    assert finished.error is None
    assert finished.model_extra["task_id"] == finished.id
    op = rest.get(f"/v1beta/{operation_name(finished.id)}").json()
    assert op["done"] is True and "response" in op


def test_statuses_are_the_sdks_words(client: openai.OpenAI, idle_client: openai.OpenAI) -> None:
    queued = idle_client.videos.create(model=FAST, prompt="waiting", seconds="4")
    assert queued.status == "queued"
    raw = idle_client.videos.with_raw_response.retrieve(queued.id)
    assert raw.parse().status == "queued"
    assert raw.headers["openai-poll-after-ms"] == "200"


def test_create_and_poll_ends_on_failure(client: openai.OpenAI, rest: httpx.Client) -> None:
    """create_and_poll in a thread; the video is cancelled (Gemini dialect) while it runs."""
    before = {v.id for v in client.videos.list(limit=100).data}
    result: dict[str, Any] = {}

    def run() -> None:
        result["video"] = client.videos.create_and_poll(
            model=FAST, prompt="a slow sunrise over hills", seconds="8", size="1280x720"
        )

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    new: list[str] = []
    while not new and time.monotonic() < deadline:
        new = [v.id for v in client.videos.list(limit=5).data if v.id not in before]
        time.sleep(0.05)
    assert len(new) == 1, new
    assert rest.post(f"/v1beta/{operation_name(new[0])}:cancel").status_code == 200
    worker.join(POLL_TIMEOUT)
    video = result.get("video")
    assert video is not None, "create_and_poll did not end on a failed video"
    assert video.id == new[0]
    assert video.status == "failed"
    assert (video.error.code, video.error.message) == ("cancelled", "Operation cancelled.")
    assert video.model_extra["fail_reason"] == "Operation cancelled."


def test_input_reference_file_is_the_first_frame(client: openai.OpenAI, tmp_path: Path) -> None:
    video = client.videos.create_and_poll(
        model=FAST,
        prompt="the scene slowly comes alive",
        seconds="4",
        size="1280x720",
        input_reference=("first.png", RED_PNG, "image/png"),
    )
    assert video.status == "completed", video
    path = tmp_path / "first.mp4"
    client.videos.download_content(video.id).write_to_file(path)
    first, _last = first_and_last_frames(path)
    red = cv2.resize(decode_png(RED_PNG), (1280, 720), interpolation=cv2.INTER_CUBIC)
    assert psnr(first, red) > 25


def test_extra_body_images_become_first_and_last_frame(
    idle_client: openai.OpenAI, idle: ServerProcess, images: ImageServer
) -> None:
    """`images[]` bracket fields: a URL first frame and a data-URI last frame; the duration
    arrives as the string "8" and must be coerced (Veo refuses a string). The inputs the
    server stored for the job are exactly the two images."""
    video = idle_client.videos.create(
        model=FAST,
        prompt="red turns to blue",
        extra_body={
            "images": [images.url("/red.png?sdk=interp"), f"data:image/png;base64,{b64(BLUE_PNG)}"],
            "metadata": {"durationSeconds": 8},
        },
    )
    assert (video.status, video.seconds, video.size) == ("queued", "8", "1280x720")
    op_id = operation_name(video.id).rsplit("/", 1)[1]
    inputs = idle.data_dir / "files" / "inputs" / op_id
    assert (inputs / "image").read_bytes() == RED_PNG
    assert (inputs / "last_frame").read_bytes() == BLUE_PNG
    assert any(path == "/red.png?sdk=interp" for path, _ in images.requests)


def _references(count: int, url: str) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = [
        {
            "image": {
                "bytesBase64Encoded": f"data:image/png;base64,{b64(RED_PNG)}",
                "mimeType": "image/png",
            },
            "referenceType": "asset",
        },
        {"image": {"bytesBase64Encoded": url}, "referenceType": "asset"},
    ]
    return (refs * count)[:count]


def test_reference_images_as_arrays_of_objects(
    client: openai.OpenAI, idle_client: openai.OpenAI, images: ImageServer
) -> None:
    """`metadata[referenceImages][][image][…]` rebuilt by position: the count and the model
    rules see exactly the objects the user passed."""
    url = images.url("/blue.png?sdk=refs")
    meta = {"aspectRatio": "16:9", "durationSeconds": 8}
    with pytest.raises(openai.BadRequestError) as fast:
        idle_client.videos.create(
            model=FAST,
            prompt="a cat",
            extra_body={"metadata": {**meta, "referenceImages": _references(1, url)}},
        )
    assert fast.value.body == {
        "code": 400,
        "message": "`referenceImages` isn't supported by this model.",
        "status": "INVALID_ARGUMENT",
    }
    with pytest.raises(openai.BadRequestError) as many:
        idle_client.videos.create(
            model=STANDARD,
            prompt="a cat",
            extra_body={"metadata": {**meta, "referenceImages": _references(4, url)}},
        )
    assert many.value.body["message"] == "too many reference images"
    accepted = idle_client.videos.create(
        model=STANDARD,
        prompt="a cat in a garden",
        extra_body={"metadata": {**meta, "referenceImages": _references(2, url)}},
    )
    assert accepted.status == "queued"
    assert any(path == "/blue.png?sdk=refs" for path, _ in images.requests)


def test_gateway_errors_reach_the_sdk(idle_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        idle_client.videos.create(
            model=FAST,
            prompt="x",
            seconds="4",
            extra_body={"images": [b64(RED_PNG), b64(BLUE_PNG)]},
        )
    assert info.value.body["message"] == "Your use case is currently not supported."
    assert str(info.value) == "Error code: 400 - Your use case is currently not supported."
    with pytest.raises(openai.BadRequestError) as bad:
        idle_client.videos.create(model=FAST, prompt="x", extra_body={"images": ["%%%"]})
    assert bad.value.body["message"] == "invalid base64"
    with pytest.raises(openai.NotFoundError):
        idle_client.videos.retrieve("bW9kZWxzL3gvb3BlcmF0aW9ucy8wMGZm")


def test_list_pages_with_a_cursor(idle_client: openai.OpenAI) -> None:
    mine = [
        idle_client.videos.create(model=FAST, prompt=f"page {i}", seconds="4").id for i in range(5)
    ]
    newest_first = [v.id for v in idle_client.videos.list(limit=2)]  # auto-pagination
    assert [i for i in newest_first if i in mine] == mine[::-1]
    page = idle_client.videos.list(limit=2, order="asc")
    assert len(page.data) == 2 and page.has_more is True and page.last_id == page.data[-1].id
    oldest_first = [v.id for v in idle_client.videos.list(limit=2, order="asc")]
    assert [i for i in oldest_first if i in mine] == mine
    assert len(oldest_first) == len(set(oldest_first)) == len(newest_first)
    after = idle_client.videos.list(after=mine[2], limit=100, order="asc").data
    assert [v.id for v in after if v.id in mine] == mine[3:]


def test_idempotency_key_returns_the_same_video(idle_client: openai.OpenAI) -> None:
    key = {"Idempotency-Key": f"key-{time.time_ns()}"}
    first = idle_client.videos.create(
        model=FAST, prompt="only once", seconds="4", extra_headers=key
    )
    again = idle_client.videos.create(
        model=FAST, prompt="only once", seconds="4", extra_headers=key
    )
    other = idle_client.videos.create(model=FAST, prompt="only once", seconds="4")
    assert again.id == first.id != other.id
    ids = [v.id for v in idle_client.videos.list(limit=100)]
    assert ids.count(first.id) == 1
    with pytest.raises(openai.BadRequestError) as changed:
        idle_client.videos.create(
            model=FAST, prompt="something else", seconds="4", extra_headers=key
        )
    assert "same parameters" in changed.value.body["message"]


def test_download_variants(client: openai.OpenAI, finished: Any, tmp_path: Path) -> None:
    mp4 = client.videos.download_content(finished.id, variant="video").content
    assert mp4[4:8] == b"ftyp"
    thumb_bytes = client.videos.download_content(finished.id, variant="thumbnail").content
    assert thumb_bytes[:4] == b"RIFF" and thumb_bytes[8:12] == b"WEBP"
    thumb = np.asarray(Image.open(io.BytesIO(thumb_bytes)).convert("RGB"))
    path = tmp_path / "v.mp4"
    path.write_bytes(mp4)
    first, _ = first_and_last_frames(path)
    assert thumb.shape == first.shape and psnr(thumb, first) > 30
    sheet_bytes = client.videos.download_content(finished.id, variant="spritesheet").content
    assert sheet_bytes[:3] == b"\xff\xd8\xff"
    sheet = Image.open(io.BytesIO(sheet_bytes))
    assert (sheet.format, sheet.size) == ("JPEG", (5 * 256, 5 * 144))  # 25 tiles of 96 frames
    tile = np.asarray(sheet.convert("RGB"))[:144, :256]
    small_first = cv2.resize(first, (256, 144), interpolation=cv2.INTER_AREA)
    assert psnr(tile, small_first) > 25
    with pytest.raises(openai.BadRequestError):
        client.videos.download_content(finished.id, variant="poster")  # type: ignore[arg-type]


def test_remix_keeps_the_request_and_the_seed(
    client: openai.OpenAI, finished: Any, rest: httpx.Client
) -> None:
    remix = client.videos.remix(finished.id, prompt="the same lighthouse in a storm")
    assert remix.remixed_from_video_id == finished.id
    assert remix.id != finished.id
    assert (remix.prompt, remix.seconds, remix.size, remix.model) == (
        "the same lighthouse in a storm",
        "4",
        "1280x720",
        FAST,
    )
    done = poll(client, remix.id)
    assert done.status == "completed"
    seeds = [
        rest.get(f"/v1beta/{operation_name(v)}").json()["metadata"]["seed"]
        for v in (finished.id, remix.id)
    ]
    assert seeds[0] == seeds[1]
    assert client.videos.retrieve(remix.id).remixed_from_video_id == finished.id


def test_delete_removes_the_files(
    client: openai.OpenAI, srv: ServerProcess, rest: httpx.Client
) -> None:
    video = client.videos.create_and_poll(model=FAST, prompt="a short-lived clip", seconds="4")
    assert video.status == "completed"
    assert client.videos.download_content(video.id, variant="thumbnail").content
    op = rest.get(f"/v1beta/{operation_name(video.id)}").json()
    uri = op["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    file_id = uri.rsplit("files/", 1)[1].split(":", 1)[0]
    stored = srv.data_dir / "files" / "videos" / f"{file_id}.mp4"
    derived = srv.data_dir / "files" / "derived" / file_id
    assert stored.is_file() and derived.is_dir()

    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    assert not stored.exists() and not derived.exists()
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_sdk_retry_of_a_create_that_started_a_job(idle: ServerProcess) -> None:
    """The first create reaches cinegen (a job starts) but the client sees a 503; the SDK
    retries with the same headers, and the Idempotency-Key makes it the same video."""
    with FlakyProxy(idle.url, failures=1) as proxy:
        retrying = openai.OpenAI(
            base_url=f"{proxy.url}/v1",
            api_key="anything",
            max_retries=2,
            http_client=openai.DefaultHttpxClient(trust_env=False),
        )
        before = {v.id for v in retrying.videos.list(limit=100)}
        key = {"Idempotency-Key": f"retry-{time.time_ns()}"}
        video = retrying.videos.create(model=FAST, prompt="retried", seconds="4", extra_headers=key)
        after = [v.id for v in retrying.videos.list(limit=100) if v.id not in before]
    assert len(proxy.creates) == 2  # the failed try and the retry
    assert proxy.creates[1].get("x-stainless-retry-count") == "1"
    assert after == [video.id]  # one job, not two
