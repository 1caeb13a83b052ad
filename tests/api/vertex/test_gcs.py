"""`storageUri` outputs and `gcsUri` inputs, against a real GCS emulator (fake-gcs-server)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.api.vertex.support import GcsEmulator, inline_videos, vcreate, vgenerate
from tests.helpers import first_and_last_frames, png_bytes, video_facts
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
        ("gs://inputs/missing.png", "does not exist"),
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
