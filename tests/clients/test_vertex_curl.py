"""The Vertex reference's curl samples (seed 003), run with bash and curl against cinegen.

The request bodies and the curl commands are read from the seed at test time; the only
changes are the host, the token (`$(gcloud auth print-access-token)`) and the placeholders the
seed asks the reader to fill in (PROJECT_ID, MODEL_ID, TEXT_PROMPT, …). Each sample saves its
body as request.json and runs the seed's `curl … -d @request.json …:predictLongRunning`, then
the seed's `:fetchPredictOperation` command until the operation is done.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.api.vertex import support
from tests.clients.seed_harness import SEED_DIR, check_mp4
from tests.helpers import b64, png_bytes

pytestmark = pytest.mark.xdist_group("vertex_curl")

SEED = SEED_DIR / "003_655f70603d42a6c8.txt"
HOST = "https://us-central1-aiplatform.googleapis.com"
TOKEN_CMD = "$(gcloud auth print-access-token)"
PROJECT, MODEL = "my-project", "veo-3.0-generate-001"
vertex_server = support.vertex_server  # fixtures shared with tests/api/vertex
gcs = support.gcs


def seed_text() -> str:
    if not SEED.is_file():
        pytest.fail(f"seed document {SEED} not found (set CINEGEN_SEED_DIR)")
    return SEED.read_text()


def request_bodies(text: str) -> list[str]:
    """Every 'JSON-Text der Anfrage:' block, verbatim."""
    return [
        m.group(1).strip()
        for m in re.finditer(r"JSON-Text der Anfrage:\n\n(.*?)\n\nWenn Sie", text, re.S)
    ]


def curl_command(text: str, method: str) -> str:
    """The first `curl -X POST \\ … :method"` command of the seed, verbatim."""
    match = re.search(r'(curl -X POST \\\n(?:.*\\\n)*"https://[^"\n]*:' + method + '")', text)
    assert match, f"no curl command for {method} in the seed"
    return match.group(1)


def localise(command: str, url: str, token: str) -> str:
    return command.replace(HOST, url).replace(TOKEN_CMD, token)


def run_curl(command: str, cwd: Path, body: str) -> dict:
    (cwd / "request.json").write_text(body)
    out = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    return json.loads(out.stdout)


def fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace(key, value)
    return template


@pytest.mark.parametrize("sample", ["text", "image"])
def test_seed_curl_samples(vertex_server, gcs, tmp_path: Path, sample: str) -> None:
    text = seed_text()
    bodies = request_bodies(text)
    create_cmd = fill(curl_command(text, "predictLongRunning"), PROJECT_ID=PROJECT, MODEL_ID=MODEL)
    fetch_cmd = fill(curl_command(text, "fetchPredictOperation"), PROJECT_ID=PROJECT,
                     MODEL_ID=MODEL)  # fmt: skip
    token = "static-test-token"  # the server has no keys: any bearer token is accepted
    create_cmd = localise(create_cmd, vertex_server.url, token)
    fetch_cmd = localise(fetch_cmd, vertex_server.url, token)
    gcs.make_bucket("video-bucket")

    # bodies[0] is text-to-video (sampleCount quoted, as the seed writes it), bodies[1] image.
    if sample == "text":
        body = fill(bodies[0], TEXT_PROMPT="A lone cowboy rides at sunset",
                    OUTPUT_STORAGE_URI="gs://video-bucket/output/", RESPONSE_COUNT="2")  # fmt: skip
        count = 2
    else:
        body = fill(bodies[1], TEXT_PROMPT="The jellyfish pulse", INPUT_IMAGE=b64(png_bytes()),
                    MIME_TYPE="image/png", OUTPUT_STORAGE_URI="gs://video-bucket/output/",
                    RESPONSE_COUNT="1")  # fmt: skip
        count = 1
    json.loads(body)  # the filled-in seed body is valid JSON

    created = run_curl(create_cmd, tmp_path, body)
    name = created["name"]
    prefix = (
        f"projects/{PROJECT}/locations/us-central1/publishers/google/models/{MODEL}/operations/"
    )
    assert name.startswith(prefix), created
    fetch_body = fill(bodies[-1], PROJECT_ID=PROJECT, MODEL_ID=MODEL,
                      OPERATION_ID=name.rsplit("/", 1)[1])  # fmt: skip
    assert json.loads(fetch_body) == {"operationName": name}

    deadline = time.monotonic() + 240
    while True:
        op = run_curl(fetch_cmd, tmp_path, fetch_body)
        if op.get("done"):
            break
        assert time.monotonic() < deadline, op
        time.sleep(0.5)
    assert op["name"] == name
    response = op["response"]
    assert response["@type"] == (
        "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
    )
    assert response["raiMediaFilteredCount"] == 0
    assert len(response["videos"]) == count
    for index, video in enumerate(response["videos"]):
        assert video["mimeType"] == "video/mp4"
        assert re.fullmatch(rf"gs://video-bucket/output/[0-9a-f]+/sample_{index}\.mp4",
                            video["gcsUri"]), video  # fmt: skip
        path = tmp_path / f"sample_{index}.mp4"
        path.write_bytes(gcs.get(video["gcsUri"]))
        check_mp4(path, size=(1280, 720), frames=8 * 24)
