"""The gateway dialect of `/v1/videos` (seed 004) against a real `cinegen serve`."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import video_facts
from tests.support.server import ServerProcess

from .support import (
    BLUE_PNG,
    GREEN_JPEG,
    RED_PNG,
    ImageServer,
    b64,
    operation_name,
    videos_server,
    wait_video,
)

pytestmark = pytest.mark.xdist_group("videos_gateway")

FAST = "veo-3.1-fast-generate-preview"
STANDARD = "veo-3.1-generate-preview"
CREATE_KEYS = {"id", "task_id", "object", "model", "status", "progress", "created_at"}


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with ImageServer() as server:
        yield server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with videos_server(tmp_path_factory.mktemp("videos")) as proc:
        yield proc


@pytest.fixture
def client(srv: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer anything"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=60, trust_env=False) as http:
        yield http


def create(client: httpx.Client, body: dict) -> httpx.Response:
    return client.post("/v1/videos", json=body)


def test_create_poll_download(client: httpx.Client, tmp_path: Path) -> None:
    """The whole life of a gateway video: `""` at create, `in_progress` with a progress that
    moves, `completed` with completed_at, then the MP4 from /content."""
    created = create(
        client,
        {"model": FAST, "prompt": "a red kite over a beach", "metadata": {"durationSeconds": 4}},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body.keys() >= CREATE_KEYS
    assert body["id"] == body["task_id"]
    assert (body["object"], body["model"], body["status"], body["progress"]) == (
        "video",
        FAST,
        "",
        0,
    )
    assert abs(body["created_at"] - time.time()) < 60
    assert created.headers["openai-poll-after-ms"] == "200"
    name = operation_name(body["id"])
    assert name.startswith(f"models/{FAST}/operations/")

    seen: list[tuple[str, int]] = []
    while not seen or seen[-1][0] not in ("completed", "failure"):
        poll = client.get(f"/v1/videos/{body['id']}").json()
        seen.append((poll["status"], poll["progress"]))
        time.sleep(0.05)
    assert seen[-1] == ("completed", 100), seen
    progress = [p for s, p in seen if s == "in_progress"]
    assert progress == sorted(progress), seen
    assert any(0 < p < 100 for p in progress), seen
    assert {s for s, _ in seen} <= {"", "in_progress", "completed"}
    assert poll["completed_at"] >= poll["created_at"]
    assert (poll["seconds"], poll["size"]) == ("4", "1280x720")

    content = client.get(f"/v1/videos/{body['id']}/content")
    assert content.status_code == 200
    assert content.headers["content-type"] == "video/mp4"
    path = tmp_path / "out.mp4"
    path.write_bytes(content.content)
    facts = video_facts(path)
    assert (facts.width, facts.height, facts.frames) == (1280, 720, 96)


def test_same_operation_through_the_gemini_dialect(client: httpx.Client) -> None:
    created = create(
        client, {"model": FAST, "prompt": "a paper boat", "metadata": {"durationSeconds": 4}}
    ).json()
    done = wait_video(client, created["id"])
    op = client.get(f"/v1beta/{operation_name(created['id'])}").json()
    assert op["done"] is True
    uri = op["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    via_gemini = client.get(uri.replace(str(client.base_url).rstrip("/"), ""))
    via_videos = client.get(f"/v1/videos/{done['id']}/content")
    assert via_gemini.content == via_videos.content

    # and the other way: a Gemini operation read as a video
    gemini = client.post(
        f"/v1beta/models/{FAST}:predictLongRunning",
        json={"instances": [{"prompt": "a lantern"}], "parameters": {"durationSeconds": 4}},
    ).json()
    ident = base64.urlsafe_b64encode(gemini["name"].encode()).decode().rstrip("=")
    video = client.get(f"/v1/videos/{ident}")
    assert video.status_code == 200, video.text
    assert video.json()["id"] == ident
    assert wait_video(client, ident)["status"] == "completed"


def test_image_urls_are_fetched_into_the_job(idle: ServerProcess, images: ImageServer) -> None:
    """URLs in `images` and in `referenceImages` are downloaded when the video is created and
    stored as the job's inputs (rendering them is the seed scenarios' job, which check the
    first and last frames of the MP4s)."""
    frames = {
        "model": FAST,
        "prompt": "red to blue",
        "images": [images.url("/red.png?t=frames"), images.url("/blue.png?t=frames")],
        "metadata": {"durationSeconds": 8},
    }
    refs = {
        "model": STANDARD,
        "prompt": "a cat",
        "metadata": {
            "durationSeconds": 8,
            "referenceImages": [
                {"image": {"bytesBase64Encoded": images.url("/green.jpg?t=refs")}},
                {"image": {"bytesBase64Encoded": b64(RED_PNG), "mimeType": "image/png"}},
            ],
        },
    }
    with httpx.Client(base_url=idle.url, timeout=60, trust_env=False) as http:
        made = [http.post("/v1/videos", json=body) for body in (frames, refs)]
    assert [r.status_code for r in made] == [200, 200], [r.text for r in made]
    ops = [operation_name(r.json()["id"]).rsplit("/", 1)[1] for r in made]
    inputs = [idle.data_dir / "files" / "inputs" / op for op in ops]
    assert (inputs[0] / "image").read_bytes() == RED_PNG
    assert (inputs[0] / "last_frame").read_bytes() == BLUE_PNG
    assert (inputs[1] / "reference_0").read_bytes() == GREEN_JPEG
    assert (inputs[1] / "reference_1").read_bytes() == RED_PNG
    fetched = [path for path, _ in images.requests if "?t=" in path]
    # A request's URLs are fetched in parallel (the fetch pool): in any order within it.
    assert sorted(fetched[:2]) == ["/blue.png?t=frames", "/red.png?t=frames"]
    assert fetched[2:] == ["/green.jpg?t=refs"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (  # interpolation at 4 s
            {
                "model": FAST,
                "prompt": "x",
                "images": [b64(RED_PNG), b64(BLUE_PNG)],
                "metadata": {"durationSeconds": 4},
            },
            "Your use case is currently not supported.",
        ),
        (  # reference images on the fast model
            {
                "model": FAST,
                "prompt": "x",
                "metadata": {
                    "durationSeconds": 8,
                    "referenceImages": [
                        {"image": {"bytesBase64Encoded": b64(RED_PNG)}, "referenceType": "asset"}
                    ],
                },
            },
            "`referenceImages` isn't supported by this model.",
        ),
        (  # interpolation and reference images together
            {
                "model": STANDARD,
                "prompt": "x",
                "images": [b64(RED_PNG), b64(BLUE_PNG)],
                "metadata": {
                    "durationSeconds": 8,
                    "referenceImages": [
                        {"image": {"bytesBase64Encoded": b64(RED_PNG)}, "referenceType": "asset"}
                    ],
                },
            },
            "`referenceImages` isn't supported by this model.",
        ),
        (  # allow_all with an image
            {
                "model": FAST,
                "prompt": "x",
                "images": [b64(RED_PNG)],
                "metadata": {"personGeneration": "allow_all"},
            },
            "allow_all for personGeneration is currently not supported.",
        ),
        (
            {
                "model": STANDARD,
                "prompt": "x",
                "metadata": {
                    "durationSeconds": 8,
                    "referenceImages": [
                        {"image": {"bytesBase64Encoded": b64(RED_PNG)}, "referenceType": "asset"}
                    ]
                    * 4,
                },
            },
            "too many reference images",
        ),
        ({"model": FAST, "prompt": "x", "images": ["iVBORw0KGgo!!!"]}, "invalid base64"),
        (
            {
                "model": STANDARD,
                "prompt": "x",
                "metadata": {
                    "durationSeconds": 8,
                    "referenceImages": [
                        {"image": {"bytesBase64Encoded": "data:image/png;base64,@@"}}
                    ],
                },
            },
            "invalid base64",
        ),
        (
            {"model": FAST, "prompt": "x", "images": ["http://10.0.0.1/cat.png"]},
            "failed to download image",
        ),
    ],
    ids=[
        "use-case",
        "refs-fast",
        "refs-interp",
        "allow-all",
        "too-many",
        "b64",
        "b64-ref",
        "private-url",
    ],
)
def test_gateway_errors_are_exact(client: httpx.Client, body: dict, message: str) -> None:
    response = create(client, body)
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
    }


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing.png", "HTTP 404"),
        ("/page.html", "not a JPEG, PNG or WebP image"),
        ("/big", "over the 20971520"),
        ("/redirect?to=http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ],
)
def test_url_refusals_are_logged(
    client: httpx.Client, srv: ServerProcess, images: ImageServer, path: str, reason: str
) -> None:
    url = images.url(path)
    response = create(
        client,
        {
            "model": STANDARD,
            "prompt": "x",
            "metadata": {
                "durationSeconds": 8,
                "referenceImages": [{"image": {"bytesBase64Encoded": url}}],
            },
        },
    )
    assert response.json()["error"]["message"] == "failed to download image"
    logged = [line for line in srv.log().splitlines() if "failed to download image" in line]
    assert any(reason in line and url.split("?")[0] in line for line in logged), logged[-3:]


def test_nothing_is_downloaded_for_a_request_the_rules_refuse(
    client: httpx.Client, images: ImageServer
) -> None:
    before = len(images.requests)
    body = {
        "model": FAST,
        "prompt": "x",
        "images": [images.url("/red.png"), images.url("/blue.png")],
        "metadata": {"durationSeconds": 6},
    }
    assert (
        create(client, body).json()["error"]["message"]
        == "Your use case is currently not supported."
    )
    assert len(images.requests) == before


def test_failure_status_and_fail_reason(client: httpx.Client) -> None:
    created = create(
        client, {"model": FAST, "prompt": "a long night", "metadata": {"durationSeconds": 8}}
    ).json()
    name = operation_name(created["id"])
    cancel = client.post(f"/v1beta/{name}:cancel")
    assert cancel.status_code == 200
    done = wait_video(client, created["id"])
    assert done["status"] == "failure"
    assert done["fail_reason"] == "Operation cancelled."
    openai = client.get(f"/v1/videos/{created['id']}", params={"compat": "openai"}).json()
    assert openai["status"] == "failed"
    assert openai["error"] == {"code": "cancelled", "message": "Operation cancelled."}
    content = client.get(f"/v1/videos/{created['id']}/content")
    assert content.status_code == 400
    assert "failed" in content.json()["error"]["message"]


def test_unknown_and_malformed(client: httpx.Client) -> None:
    missing = base64.urlsafe_b64encode(b"models/x/operations/00ff").decode().rstrip("=")
    for ident in (missing, "not-a-video"):
        response = client.get(f"/v1/videos/{ident}")
        assert response.status_code == 404
        assert response.json()["error"] == {
            "code": 404,
            "message": f"Video {ident} not found.",
            "status": "NOT_FOUND",
        }
    bad_json = client.post(
        "/v1/videos", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"]["status"] == "INVALID_ARGUMENT"
    no_model = create(client, {"prompt": "x"})
    assert no_model.status_code == 400
    assert "model" in no_model.json()["error"]["message"]
    unknown = create(client, {"model": "sora-2", "prompt": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"].startswith("models/sora-2 is not found")
    three = create(client, {"model": FAST, "prompt": "x", "images": [b64(RED_PNG)] * 3})
    assert three.status_code == 400
    wrong_type = create(
        client, {"model": FAST, "prompt": "x", "metadata": {"durationSeconds": "8"}}
    )
    assert (
        wrong_type.json()["error"]["message"]
        == "The value type for `durationSeconds` needs to be a number."
    )


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """No worker: every video stays queued."""
    with videos_server(tmp_path_factory.mktemp("idle"), CINEGEN_WORKERS="0") as proc:
        yield proc


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CINEGEN_WORKERS": "0", "CINEGEN_RESTRICTED_REGION": "true"}
    with videos_server(tmp_path_factory.mktemp("eu"), **env) as proc:
        yield proc


class TestQueued:
    """With no worker a video stays queued: `""` for the gateway, `queued` for the SDK."""

    def test_queued_words_by_dialect(self, idle: ServerProcess) -> None:
        with httpx.Client(base_url=idle.url, timeout=30, trust_env=False) as http:
            ident = http.post("/v1/videos", json={"model": FAST, "prompt": "wait"}).json()["id"]
            gateway = http.get(f"/v1/videos/{ident}").json()
            assert (gateway["status"], gateway["progress"]) == ("", 0)
            by_query = http.get(f"/v1/videos/{ident}", params={"compat": "openai"}).json()
            by_header = http.get(
                f"/v1/videos/{ident}", headers={"X-Stainless-Lang": "python"}
            ).json()
            forced = http.get(
                f"/v1/videos/{ident}",
                params={"compat": "gateway"},
                headers={"X-Stainless-Lang": "python"},
            ).json()
            assert (by_query["status"], by_header["status"], forced["status"]) == (
                "queued",
                "queued",
                "",
            )
            early = http.get(f"/v1/videos/{ident}/content")
            assert early.status_code == 400
            assert early.json()["error"]["message"] == (
                f"Video {ident} is not completed yet, current status: queued"
            )


class TestRestrictedRegion:
    def test_allow_all_refused_only_where_the_region_says(
        self, restricted: ServerProcess, client: httpx.Client
    ) -> None:
        body = {
            "model": FAST,
            "prompt": "people on a street",
            "metadata": {"personGeneration": "allow_all", "durationSeconds": 4},
        }
        with httpx.Client(base_url=restricted.url, timeout=30, trust_env=False) as http:
            refused = http.post("/v1/videos", json=body)
        assert refused.status_code == 400
        assert (
            refused.json()["error"]["message"]
            == "allow_all for personGeneration is currently not supported."
        )
        accepted = create(client, body)
        assert accepted.status_code == 200, accepted.text
        assert client.delete(f"/v1/videos/{accepted.json()['id']}").status_code == 200
