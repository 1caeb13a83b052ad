"""One real request/response pair per Vertex route, checked and written as Markdown.

With CINEGEN_WRITE_CAPTURES=1 the file is tests/api/vertex/CAPTURES.md (committed as the
closing proof); otherwise it goes to the test's temp dir, so a plain run changes no file.
Long base64 strings are shortened in the file only; the checks see the full bodies.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest

from tests.api.vertex.support import GcsEmulator, vwait

pytestmark = pytest.mark.xdist_group("vertex")

HERE = Path(__file__).resolve().parent
KEY = "my-express-key"


def _short(value: object) -> object:
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short(v) for v in value]
    if isinstance(value, str) and len(value) > 120 and re.fullmatch(r"[A-Za-z0-9+/=]+", value):
        return f"{value[:48]}…<{len(value)} base64 chars>"
    return value


def _pair(response: httpx.Response) -> str:
    request = response.request
    body = request.content.decode() if request.content else ""
    shown = {
        k: v
        for k, v in request.headers.items()
        if k.lower() in ("content-type", "x-goog-api-key", "authorization")
    }
    lines = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in shown.items()]
    text = "\n".join(lines) + ("\n\n" + json.dumps(_short(json.loads(body))) if body else "")
    reply = json.dumps(_short(response.json()), indent=2)
    return f"```http\n{text}\n```\n```http\nHTTP/1.1 {response.status_code}\n\n{reply}\n```\n"


def test_one_capture_per_route(vertex_server, gcs: GcsEmulator, tmp_path: Path) -> None:
    gcs.make_bucket("video-bucket")
    scoped = "/v1/projects/my-project/locations/us-central1/publishers/google/models/"
    express = "/v1beta1/publishers/google/models/"
    model = "veo-3.0-generate-preview"
    sections: list[tuple[str, httpx.Response]] = []
    with httpx.Client(base_url=vertex_server.url, timeout=60) as client:
        bearer = {"Authorization": "Bearer static-oauth-token"}
        body = {
            "instances": [{"prompt": "A cat surfing a wave"}],
            "parameters": {"durationSeconds": 4, "storageUri": "gs://video-bucket/out/"},
        }
        created = client.post(f"{scoped}{model}:predictLongRunning", json=body, headers=bearer)
        assert created.status_code == 200, created.text
        sections.append(("POST /v1/projects/{p}/locations/{l}/…:predictLongRunning", created))
        name = created.json()["name"]
        vwait(client, name)
        fetched = client.post(
            f"{scoped}{model}:fetchPredictOperation", json={"operationName": name}, headers=bearer
        )
        assert fetched.json()["response"]["videos"][0]["gcsUri"].startswith("gs://video-bucket/")
        sections.append(("POST /v1/projects/{p}/locations/{l}/…:fetchPredictOperation", fetched))
        got = client.get(f"/v1/{name}", headers=bearer)
        assert got.json()["done"] is True
        sections.append(("GET /v1/projects/{p}/locations/{l}/…/operations/{id}", got))

        key = {"x-goog-api-key": KEY}
        body = {"instances": [{"prompt": "A cat surfing a wave"}], "parameters": {"seed": 7,
                "durationSeconds": 4, "generateAudio": False}}  # fmt: skip
        created = client.post(f"{express}{model}:predictLongRunning", json=body, headers=key)
        assert created.status_code == 200, created.text
        sections.append(("POST /v1beta1/publishers/google/models/{m}:predictLongRunning", created))
        name = created.json()["name"]
        vwait(client, name, "v1beta1")
        fetched = client.post(
            f"{express}{model}:fetchPredictOperation", json={"operationName": name}, headers=key
        )
        assert fetched.json()["response"]["videos"][0]["bytesBase64Encoded"]
        sections.append(
            ("POST /v1beta1/publishers/google/models/{m}:fetchPredictOperation", fetched)
        )
        got = client.get(f"/v1beta1/{name}", headers=key)
        assert got.json()["done"] is True
        sections.append(("GET /v1beta1/publishers/google/models/{m}/operations/{id}", got))

    text = "# Vertex AI dialect: one captured request/response pair per route\n\n"
    text += "Written by `tests/api/vertex/test_captures.py` (`CINEGEN_WRITE_CAPTURES=1`) "
    text += "against a live `cinegen serve` and fake-gcs-server; base64 shortened.\n\n"
    for title, response in sections:
        text += f"## {title}\n\n{_pair(response)}\n"
    target = HERE / "CAPTURES.md" if os.environ.get("CINEGEN_WRITE_CAPTURES") else tmp_path / "C.md"
    target.write_text(text)
    assert text.count("```http") == 2 * len(sections) == 12
