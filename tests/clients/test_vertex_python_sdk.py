"""google-genai 3.x (its own venv) in Vertex AI mode against cinegen, driven for real.

1. Vertex express with env vars only (`GOOGLE_GENAI_USE_VERTEXAI=true`, `GOOGLE_API_KEY`,
   `GOOGLE_GEMINI_BASE_URL`; spec/google-genai-sdk-wire.md §1.3): the seed's Python samples,
   with the `client.files.download(...)` line left out because 3.x forbids it in Vertex mode
   (`ValueError: This method is only supported in the Gemini Developer client.`); the rest runs
   as written and ends with `video.save(...)` giving a playable MP4.
2. `project`, `location` and static OAuth credentials
   (`google.oauth2.credentials.Credentials(token=...)`), on a server with keys: the token is a
   key, sent as `Authorization: Bearer`; also `output_gcs_uri` into the GCS emulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.vertex import support
from tests.api.vertex.support import GENAI3_VERSION, GcsEmulator, gcs_env
from tests.clients.seed_harness import (
    API_KEY,
    EXTENSION_FRAMES,
    FAKE_NANO_BANANA,
    FPS,
    IMAGES,
    IMPORT_TYPES,
    SAMPLE_TIMEOUT_S,
    SAMPLES,
    SIZES,
    Run,
    SampleRunner,
    assert_looks_like,
    check_mp4,
    client_env,
    describe,
    probe,
    run_process,
    selected_params,
)
from tests.support.server import ServerProcess, create_key

pytestmark = pytest.mark.xdist_group("vertex_python")

# The fixtures shared with tests/api/vertex (GCS emulator, server, the 3.x SDK's venv).
gcs = support.gcs
genai3_python = support.genai3_python
vertex_server = support.vertex_server

DOWNLOAD_CALL = "client.files.download("
EIGHT_S = 8 * FPS

# The extension sample continues "a video from a previous generation": make one, in Vertex
# mode, so `operation.response.generated_videos[0].video` carries the bytes as Vertex returns.
PRIOR_GENERATION = """\
import json as _seed_json
import time as _seed_time
from google import genai as _seed_genai
_seed_client = _seed_genai.Client()
operation = _seed_client.models.generate_videos(
    model="veo-3.1-generate-preview",
    prompt="Origami butterfly flaps its wings and flies out of the french doors into the garden.",
)
while not operation.done:
    _seed_time.sleep(0.5)
    operation = _seed_client.operations.get(operation)
assert operation.error is None, operation.error
_seed_prior = operation.response.generated_videos[0].video
open("prior.mp4", "wb").write(_seed_prior.video_bytes)
print("SEED_RESULT " + _seed_json.dumps({"prior": operation.name}))
"""

REPORT = """\
import json as _seed_json
from google import genai as _seed_genai
_seed_video = operation.response.generated_videos[0].video if operation.response else None
if _seed_video is not None and _seed_video.video_bytes:
    open("polled.mp4", "wb").write(_seed_video.video_bytes)
try:
    client.files.download(file=_seed_video)
    _seed_download = "allowed"
except ValueError as exc:
    _seed_download = str(exc)
print("SEED_RESULT " + _seed_json.dumps({
    "name": operation.name, "done": operation.done, "error": operation.error,
    "vertexai": client._api_client.vertexai, "sdk": _seed_genai.__version__,
    "download": _seed_download,
}))
"""

SAMPLES_VERTEX = {
    "py_01_text_to_video": ("dialogue_example.mp4", "", ()),
    "py_04_image_to_video": ("veo3_with_image_input.mp4", FAKE_NANO_BANANA, ("nano_banana",)),
    "py_07_extension": ("veo3.1_extension.mp4", IMPORT_TYPES + PRIOR_GENERATION, ()),
    "py_08_async_polling": (None, "", ()),
}

DRIVER = """\
# --- preamble ---
{preamble}
# --- sample (verbatim but for the `client.files.download(...)` line) ---
with open("sample.py", encoding="utf-8") as _seed_f:
    _seed_code = compile(_seed_f.read(), "sample.py", "exec")
exec(_seed_code)
# --- postamble ---
{postamble}
"""


def vertex_sample_text(name: str) -> str:
    """The seed sample with the one line 3.x refuses in Vertex mode taken out."""
    lines = (SAMPLES / f"{name}.py").read_text().splitlines(keepends=True)
    kept = [line for line in lines if DOWNLOAD_CALL not in line]
    assert len(lines) - len(kept) == (0 if name == "py_08_async_polling" else 1), name
    return "".join(kept)


@pytest.fixture(scope="module")
def runner(
    vertex_server: ServerProcess,
    genai3_python: Path,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[SampleRunner]:
    env = client_env(
        {
            "GOOGLE_GENAI_USE_VERTEXAI": "true",
            "GOOGLE_API_KEY": API_KEY,
            "GOOGLE_GEMINI_BASE_URL": vertex_server.url,
        }
    )

    def job(name: str) -> Run:
        _output, preamble, images = SAMPLES_VERTEX[name]
        cwd = tmp_path_factory.mktemp(name)
        for image in images:
            (cwd / f"{image}.png").write_bytes(IMAGES[image].png)
        (cwd / "sample.py").write_text(vertex_sample_text(name))
        driver = cwd / "driver.py"
        postamble = REPORT if name == "py_08_async_polling" else ""
        driver.write_text(DRIVER.format(preamble=preamble, postamble=postamble))
        return run_process(Run(name, cwd, [str(genai3_python), "-u", str(driver)]), env,
                           SAMPLE_TIMEOUT_S)  # fmt: skip

    names = selected_params(request, "name")
    pool = SampleRunner(job, workers=max(1, len(names)))
    for name in names:
        pool.start(name)
    yield pool
    pool.close()


@pytest.mark.parametrize("name", list(SAMPLES_VERTEX))
def test_seed_sample_in_vertex_express_mode(
    name: str, runner: SampleRunner, vertex_server: ServerProcess
) -> None:
    output, _preamble, _images = SAMPLES_VERTEX[name]
    run = runner.result(name)

    def context() -> str:
        return describe(run, vertex_server.log())

    assert not run.timed_out and run.returncode == 0, f"sample failed\n{context()}"
    if output is None:
        report = run.results()[-1]
        assert report["sdk"] == GENAI3_VERSION and report["vertexai"] is True, report
        assert report["done"] is True and report["error"] is None, report
        assert report["name"].startswith("publishers/google/models/veo-3.1-generate-preview/")
        assert report["download"] == "This method is only supported in the Gemini Developer client."
        check_mp4(run.cwd / "polled.mp4", size=SIZES["720p", "16:9"], frames=EIGHT_S,
                  context=context)  # fmt: skip
        return
    assert f"Generated video saved to {output}" in run.stdout, context()
    info = check_mp4(run.cwd / output, size=SIZES["720p", "16:9"],
                     frames=EIGHT_S + (EXTENSION_FRAMES if name == "py_07_extension" else 0),
                     context=context)  # fmt: skip
    if name == "py_04_image_to_video":
        assert_looks_like(info.first_rgb, "nano_banana", "first frame", context)
    if name == "py_07_extension":
        assert probe(run.cwd / "prior.mp4").frames == EIGHT_S, context()


# ------------------------------------------------- project/location + OAuth credentials

OAUTH_DRIVER = """\
import json, sys, time
import google.oauth2.credentials
from google import genai
from google.genai import types

base_url, token, bucket = sys.argv[1:4]
client = genai.Client(
    vertexai=True, project="my-project", location="us-central1",
    credentials=google.oauth2.credentials.Credentials(token=token),
    http_options={"base_url": base_url},
)
out = {"sdk": genai.__version__}
operation = client.models.generate_videos(
    model="veo-3.0-generate-001",
    prompt="A paper plane over a city",
    config=types.GenerateVideosConfig(
        duration_seconds=4, number_of_videos=2, generate_audio=False, seed=42,
        aspect_ratio="9:16", negative_prompt="rain",
        compression_quality=types.VideoCompressionQuality.OPTIMIZED,
    ),
)
out["name"] = operation.name
while not operation.done:
    time.sleep(0.5)
    operation = client.operations.get(operation)
for i, generated in enumerate(operation.response.generated_videos):
    generated.video.save(f"inline_{i}.mp4")
out["inline"] = len(operation.response.generated_videos)
out["rai"] = operation.response.rai_media_filtered_count

stored = client.models.generate_videos(
    model="veo-3.0-generate-001",
    prompt="A paper plane over a city",
    config=types.GenerateVideosConfig(duration_seconds=4, output_gcs_uri=f"gs://{bucket}/sdk/"),
)
while not stored.done:
    time.sleep(0.5)
    stored = client.operations.get(stored)
video = stored.response.generated_videos[0].video
out["gcs_uri"] = video.uri
try:
    video.save("remote.mp4")
except NotImplementedError as exc:
    out["save_remote"] = str(exc)
print("RESULT " + json.dumps(out))
"""


def test_project_location_and_static_oauth_token(
    fresh_server: ServerProcess, gcs: GcsEmulator, genai3_python: Path, tmp_path: Path
) -> None:
    fresh_server.env_extra.update(gcs_env(gcs))
    fresh_server.data_dir.mkdir(parents=True)
    token = create_key(fresh_server)
    fresh_server.start()
    gcs.make_bucket("sdk-bucket")
    (tmp_path / "driver.py").write_text(OAUTH_DRIVER)
    run = run_process(
        Run("oauth", tmp_path, [str(genai3_python), "-u", "driver.py", fresh_server.url, token,
                                "sdk-bucket"]),
        client_env({}), SAMPLE_TIMEOUT_S,
    )  # fmt: skip
    assert run.returncode == 0, describe(run, fresh_server.log())
    out = json.loads(next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert out["sdk"] == GENAI3_VERSION
    assert out["name"].startswith(
        "projects/my-project/locations/us-central1/publishers/google/models/"
        "veo-3.0-generate-001/operations/"
    ), out
    assert out["inline"] == 2 and out["rai"] == 0
    for i in range(2):
        info = probe(tmp_path / f"inline_{i}.mp4")
        assert (info.width, info.height, info.frames, info.audio_codec) == (720, 1280, 96, None)
    assert out["gcs_uri"].startswith("gs://sdk-bucket/sdk/"), out
    assert out["save_remote"] == "Saving remote videos is not supported."
    (tmp_path / "remote.mp4").write_bytes(gcs.get(out["gcs_uri"]))
    assert probe(tmp_path / "remote.mp4").frames == 96

    # The same token is a key: a wrong one is refused through the SDK too.
    bad = run_process(
        Run("oauth-bad", tmp_path, [str(genai3_python), "-u", "driver.py", fresh_server.url,
                                    "not-a-key", "sdk-bucket"]),
        client_env({}), SAMPLE_TIMEOUT_S,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "403 PERMISSION_DENIED" in bad.stderr, bad.stderr[-2000:]
