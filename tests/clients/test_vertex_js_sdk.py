"""@google/genai driven by Node against cinegen: 3.1.0 in Vertex mode, 2.32.0 in Gemini API mode.

Both come from tests/clients/js/package.json (npm aliases `genai-3`, `genai-2`, locked by
package-lock.json; `.ci/run` runs `npm ci` there). The driver, tests/clients/js/drive.mjs,
configures the client from the environment only and does what a user does: generateVideos,
getVideosOperation polling, files.download({file, downloadPath}).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.api.vertex import support
from tests.clients.seed_harness import (
    API_KEY,
    EXTENSION_FRAMES,
    FPS,
    Run,
    check_mp4,
    client_env,
    describe,
    probe,
    run_process,
)
from tests.helpers import png_bytes
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("vertex_js")

JS = Path(__file__).resolve().parent / "js"
VERSIONS = {"genai-3": "3.1.0", "genai-2": "2.32.0"}
vertex_server = support.vertex_server  # fixture shared with tests/api/vertex
gcs = support.gcs


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    assert path, "node is not installed (see .ci/run)"
    for alias in VERSIONS:
        assert (JS / "node_modules" / alias / "package.json").is_file(), (
            f"{alias} is not installed: run `npm ci` in {JS}"
        )
    return path


def _env(pkg: str, url: str) -> dict[str, str]:
    if pkg == "genai-3":
        return {
            "GOOGLE_GENAI_USE_VERTEXAI": "true",
            "GOOGLE_API_KEY": API_KEY,
            "GOOGLE_VERTEX_BASE_URL": url,
        }
    return {"GEMINI_API_KEY": API_KEY, "GOOGLE_GEMINI_BASE_URL": url}


def _drive(node: str, pkg: str, scenario: str, server: ServerProcess, out: Path) -> list[dict]:
    run = run_process(
        Run(f"{pkg}-{scenario}", out, [node, str(JS / "drive.mjs"), pkg, scenario, str(out)]),
        client_env(_env(pkg, server.url)),
        300,
    )
    assert run.returncode == 0, describe(run, server.log())
    return [json.loads(line[7:]) for line in run.stdout.splitlines() if line.startswith("RESULT ")]


def _check_mode(pkg: str, result: dict) -> None:
    assert result["version"] == VERSIONS[pkg]
    assert result["className"] == "GenerateVideosOperation"
    if pkg == "genai-3":  # Vertex: the name is the Vertex one, the bytes come inline
        assert result["name"].startswith("publishers/google/models/veo-3.1-generate-preview/")
        assert result["video"] == {"uri": None, "hasBytes": True}
    else:  # Gemini API: a files/ uri the SDK downloads
        assert result["name"].startswith("models/veo-3.1-generate-preview/operations/")
        assert "/files/" in result["video"]["uri"] and not result["video"]["hasBytes"]


@pytest.mark.parametrize("pkg", list(VERSIONS))
def test_text_to_video(node: str, pkg: str, vertex_server: ServerProcess, tmp_path: Path) -> None:
    (result,) = _drive(node, pkg, "text", vertex_server, tmp_path)
    _check_mode(pkg, result)
    check_mp4(Path(result["file"]), size=(1280, 720), frames=4 * FPS)


@pytest.mark.parametrize("pkg", list(VERSIONS))
def test_image_to_video(node: str, pkg: str, vertex_server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "input.png").write_bytes(png_bytes(640, 360, (20, 40, 220)))
    (result,) = _drive(node, pkg, "image", vertex_server, tmp_path)
    _check_mode(pkg, result)
    info = check_mp4(Path(result["file"]), size=(1280, 720), frames=4 * FPS)
    r, g, b = info.first_rgb
    assert b > 150 and r < 80, info.first_rgb  # the blue input is the first frame


@pytest.mark.parametrize("pkg", list(VERSIONS))
def test_extension(node: str, pkg: str, vertex_server: ServerProcess, tmp_path: Path) -> None:
    base, extended = _drive(node, pkg, "extension", vertex_server, tmp_path)
    _check_mode(pkg, base)
    _check_mode(pkg, extended)
    check_mp4(Path(base["file"]), size=(1280, 720), frames=8 * FPS)
    info = check_mp4(Path(extended["file"]), size=(1280, 720), frames=8 * FPS + EXTENSION_FRAMES)
    assert probe(Path(base["file"])).frames + EXTENSION_FRAMES == info.frames
