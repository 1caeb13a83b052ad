"""`storageUri` outputs and `gcsUri` inputs, against a real GCS emulator (fake-gcs-server)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.api.vertex.support import GcsEmulator, inline_videos, vcreate, vgenerate
from tests.helpers import first_and_last_frames, png_bytes, video_facts
from tests.support.app import in_process
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("vertex")


def test_storage_uri_writes_samples_and_returns_gcs_uris(vertex_server, gcs, tmp_path) -> None:
    gcs.make_bucket("video-bucket")
    body = {
        "instances": [{"prompt": "Waves on a pebble beach"}],
        "parameters": {
            "durationSeconds": 4,
            "sampleCount": 2,
            "storageUri": "gs://video-bucket/out/",
        },
    }
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        op = vgenerate(client, body)
    videos = op["response"]["videos"]
    op_id = op["name"].rsplit("/", 1)[1]
    assert [v["gcsUri"] for v in videos] == [
        f"gs://video-bucket/out/{op_id}/sample_{i}.mp4" for i in range(2)
    ]
    assert all(v["mimeType"] == "video/mp4" and "bytesBase64Encoded" not in v for v in videos)
    sizes = set()
    for index, video in enumerate(videos):
        path = tmp_path / f"s{index}.mp4"
        path.write_bytes(gcs.get(video["gcsUri"]))
        facts = video_facts(path)
        assert (facts.width, facts.height, facts.frames) == (1280, 720, 96)
        sizes.add(path.stat().st_size)
    assert len(sizes) == 2  # two samples, two different videos


def test_missing_bucket_fails_the_operation_clearly(vertex_server) -> None:
    body = {
        "instances": [{"prompt": "nowhere"}],
        "parameters": {"durationSeconds": 4, "storageUri": "gs://no-such-bucket/x/"},
    }
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        op = vgenerate(client, body)
    assert "response" not in op
    assert op["error"]["code"] == 3
    assert "no-such-bucket" in op["error"]["message"]


def test_gcs_uri_image_input_is_the_first_frame(vertex_server, gcs, tmp_path) -> None:
    gcs.make_bucket("inputs")
    gcs.put("gs://inputs/frames/green.png", png_bytes(1280, 720, (20, 200, 40)), "image/png")
    body = {
        "instances": [
            {"prompt": "Animate", "image": {"gcsUri": "gs://inputs/frames/green.png",
                                             "mimeType": "image/png"}}
        ],
        "parameters": {"durationSeconds": 4},
    }  # fmt: skip
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        op = vgenerate(client, body)
    path = tmp_path / "i2v.mp4"
    path.write_bytes(inline_videos(op)[0])
    first, _ = first_and_last_frames(path)
    r, g, b = first.reshape(-1, 3).mean(axis=0)
    assert g > 150 and r < 80 and b < 80, (r, g, b)


def test_gcs_uri_video_extends_a_video_this_server_wrote(vertex_server, gcs, tmp_path) -> None:
    gcs.make_bucket("video-bucket")
    with httpx.Client(base_url=vertex_server.url, timeout=120) as client:
        first = vgenerate(
            client,
            {"instances": [{"prompt": "A paper boat"}],
             "parameters": {"storageUri": "gs://video-bucket/ext/"}},
            model="veo-3.1-generate-preview",
        )  # fmt: skip
        uri = first["response"]["videos"][0]["gcsUri"]
        extended = vgenerate(
            client,
            {"instances": [{"prompt": "It sails on",
                            "video": {"gcsUri": uri, "mimeType": "video/mp4"}}]},
            model="veo-3.1-generate-preview",
        )  # fmt: skip
    path = tmp_path / "ext.mp4"
    path.write_bytes(inline_videos(extended)[0])
    assert video_facts(path).frames == 8 * 24 + 7 * 24


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://inputs/missing.png", "The Cloud Storage object `gs://inputs/missing.png` cannot"),
        ("gs://inputs/", "names a folder"),
        ("http://example.com/a.png", "not a valid Cloud Storage uri"),
    ],
)
def test_bad_gcs_inputs_are_400(vertex_server, gcs, uri: str, message: str) -> None:
    gcs.make_bucket("inputs")
    body = {"instances": [{"prompt": "x", "image": {"gcsUri": uri, "mimeType": "image/png"}}]}
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        response = vcreate(client, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


def test_without_a_gcs_store_gcs_fields_are_refused(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        out = vcreate(client, {"instances": [{"prompt": "x"}],
                               "parameters": {"storageUri": "gs://b/o/"}})  # fmt: skip
        assert out.status_code == 400
        assert "`storageUri` needs a configured GCS store" in out.json()["error"]["message"]
        image = {"gcsUri": "gs://b/i.png", "mimeType": "image/png"}
        inp = vcreate(client, {"instances": [{"prompt": "x", "image": image}]})
        assert inp.status_code == 400
        assert inp.json()["error"]["message"] == "`gcsUri` inputs need a configured GCS store."


def test_inline_and_gcs_results_are_the_same_video(
    vertex_server, gcs: GcsEmulator, tmp_path
) -> None:
    """Same seed, same request: the video in the bucket decodes to the frames returned inline."""
    gcs.make_bucket("video-bucket")
    params = {"durationSeconds": 4, "seed": 77}
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        inline = vgenerate(client, {"instances": [{"prompt": "same"}], "parameters": params})
        stored = vgenerate(
            client,
            {"instances": [{"prompt": "same"}],
             "parameters": {**params, "storageUri": "gs://video-bucket/same"}},
        )  # fmt: skip
    a, b = tmp_path / "inline.mp4", tmp_path / "stored.mp4"
    a.write_bytes(inline_videos(inline)[0])
    b.write_bytes(gcs.get(stored["response"]["videos"][0]["gcsUri"]))
    for x, y in zip(first_and_last_frames(a), first_and_last_frames(b), strict=True):
        assert np.array_equal(x, y)


# ------------------------------------------------------------- CINEGEN_GCS_ALLOWED_PREFIXES


def _image_body(uri: str) -> dict:
    return {"instances": [{"prompt": "x", "image": {"gcsUri": uri, "mimeType": "image/png"}}]}


def test_objects_outside_the_allow_list_read_like_missing_ones(vertex_server, gcs) -> None:
    """An object that exists outside the allowed prefixes, one that does not exist inside
    them and one that does not exist outside them: the same 400, word for word (but the
    uri), so a caller cannot probe what the server's credentials reach. Before, the secret
    object was read into the job and the missing one answered "does not exist"."""
    gcs.make_bucket("secret-bucket")
    gcs.make_bucket("inputs")
    gcs.put("gs://secret-bucket/payroll.png", png_bytes(64, 64, (1, 2, 3)), "image/png")
    uris = ["gs://secret-bucket/payroll.png", "gs://inputs/missing.png", "gs://nobody/x.png"]
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        answers = [vcreate(client, _image_body(uri)) for uri in uris]
    assert [a.status_code for a in answers] == [400, 400, 400], [a.text for a in answers]
    messages = {
        a.json()["error"]["message"].replace(u, "URI") for a, u in zip(answers, uris, strict=True)
    }
    assert messages == {"The Cloud Storage object `URI` cannot be read."}


def test_storage_uri_outside_the_allow_list_is_refused(vertex_server, gcs) -> None:
    gcs.make_bucket("secret-bucket")
    body = {
        "instances": [{"prompt": "x"}],
        "parameters": {"durationSeconds": 4, "storageUri": "gs://secret-bucket/drop/"},
    }
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        answer = vcreate(client, body)
        walk_out = vcreate(
            client,
            {**body, "parameters": {**body["parameters"],
                                    "storageUri": "gs://video-bucket/../secret-bucket/"}},
        )  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"] == (
        "The Cloud Storage location `gs://secret-bucket/drop/` cannot be written."
    )
    assert walk_out.status_code == 400, walk_out.text
    assert "cannot be written" in walk_out.json()["error"]["message"]
    assert not list(gcs.client().list_blobs("secret-bucket", prefix="drop/"))


def test_no_allow_list_means_no_gcs_access(gcs, tmp_path) -> None:
    """The default: a GCS store configured, CINEGEN_GCS_ALLOWED_PREFIXES unset: every gs://
    uri is refused, read or write, even in a bucket that exists."""
    gcs.make_bucket("inputs")
    gcs.put("gs://inputs/frames/open.png", png_bytes(64, 64, (9, 9, 9)), "image/png")
    with (
        in_process(
            tmp_path / "data", workers=0, gcs_endpoint=gcs.url, gcs_project=gcs.project
        ) as server,
        server.client() as client,
    ):
        read = vcreate(client, _image_body("gs://inputs/frames/open.png"))
        write = vcreate(
            client, {"instances": [{"prompt": "x"}], "parameters": {"storageUri": "gs://inputs/o/"}}
        )
    assert read.status_code == 400 and "cannot be read" in read.json()["error"]["message"]
    assert write.status_code == 400 and "cannot be written" in write.json()["error"]["message"]
