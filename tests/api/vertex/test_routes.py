"""The Vertex routes: both versions, with and without `projects/…/locations/…/`, create,
`:fetchPredictOperation`, GET of the name, the response shape, and clear 4xx refusals."""

from __future__ import annotations

import httpx
import pytest

from tests.api.vertex.support import MODEL, inline_videos, model_path, vcreate, vfetch, vwait
from tests.helpers import video_facts

pytestmark = pytest.mark.xdist_group("vertex")

BODY = {"instances": [{"prompt": "A lighthouse at dusk"}], "parameters": {"durationSeconds": 4}}


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
@pytest.mark.parametrize("prefix", ["projects/p-1/locations/europe-west4/", ""])
def test_create_fetch_get_round_trip(vertex_server, tmp_path, version: str, prefix: str) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        created = vcreate(client, BODY, version=version, prefix=prefix)
        assert created.status_code == 200, created.text
        name = created.json()["name"]
        assert name.startswith(f"{prefix}publishers/google/models/{MODEL}/operations/")
        assert set(created.json()) == {"name"}

        op = vwait(client, name, version)
        assert op["name"] == name and op["done"] is True
        response = op["response"]
        assert response["@type"] == (
            "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
        )
        assert response["raiMediaFilteredCount"] == 0
        assert [v["mimeType"] for v in response["videos"]] == ["video/mp4"]
        assert "gcsUri" not in response["videos"][0]
        (video,) = inline_videos(op)
        path = tmp_path / "v.mp4"
        path.write_bytes(video)
        facts = video_facts(path)
        assert (facts.width, facts.height, facts.frames) == (1280, 720, 96)

        got = client.get(f"/{version}/{name}")
        assert got.status_code == 200, got.text
        assert got.json()["name"] == name and got.json()["done"] is True
        assert inline_videos(got.json()) == [video]


def test_running_operation_has_metadata_and_no_response(vertex_server) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        body = {"instances": [{"prompt": "slow"}], "parameters": {"durationSeconds": 8}}
        name = vcreate(client, body).json()["name"]
        first = vfetch(client, name).json()
        assert first["name"] == name
        if not first["done"]:  # it may legitimately have finished already on a fast machine
            assert "response" not in first and "error" not in first
        assert first["metadata"]["@type"].endswith("GenericOperationMetadata")
        assert "createTime" in first["metadata"]["genericMetadata"]
        vwait(client, name)


def test_gemini_created_operation_polls_through_vertex(vertex_server) -> None:
    """One operation, two dialects: a Gemini-created operation renders Vertex's shape."""
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        created = client.post(f"/v1beta/models/{MODEL}:predictLongRunning", json=BODY)
        op_id = created.json()["name"].rsplit("/", 1)[1]
        name = f"publishers/google/models/{MODEL}/operations/{op_id}"
        op = vwait(client, name)
        assert len(inline_videos(op)) == 1
        assert op["name"] == name


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        (f"{model_path('veo-9')}:predictLongRunning", BODY, 404, "models/veo-9 is not found"),
        (
            f"/v1/publishers/acme/models/{MODEL}:predictLongRunning",
            BODY,
            404,
            "is not found for API version v1",
        ),
        (f"/v1beta/publishers/google/models/{MODEL}:predictLongRunning", BODY, 404, "Method"),
        (f"{model_path()}:predictLongRunning", {"instances": []}, 400, "instances"),
        (f"{model_path()}:fetchPredictOperation", {}, 400, "'operationName'"),
        (
            f"{model_path()}:fetchPredictOperation",
            {"operationName": "operations/abc"},
            400,
            "Invalid operation name",
        ),
        (
            f"{model_path()}:fetchPredictOperation",
            {"operationName": f"publishers/google/models/{MODEL}/operations/0123abcd"},
            404,
            "not found",
        ),
        (f"{model_path()}/operations/zz", None, 404, "not found"),
    ],
)
def test_bad_requests_get_the_google_envelope(
    vertex_server, path: str, body: dict | None, code: int, message: str
) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        response = client.get(path) if body is None else client.post(path, json=body)
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert error["code"] == code and message in error["message"], error
    assert set(error) == {"code", "message", "status"}


def test_non_json_body_is_a_400(vertex_server) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        response = client.post(
            f"{model_path()}:predictLongRunning",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid JSON payload received.")


def test_fetch_with_another_models_url_is_refused(vertex_server) -> None:
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        name = vcreate(client, BODY).json()["name"]
        response = client.post(
            f"{model_path('veo-3.1-generate-preview')}:fetchPredictOperation",
            json={"operationName": name},
        )
        assert response.status_code == 400
        assert "belongs to model `veo-3.0-generate-preview`" in response.json()["error"]["message"]
        vwait(client, name)
