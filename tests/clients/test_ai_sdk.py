"""The Vercel AI SDK 7 driven by Node against cinegen (issue 30): `experimental_generateVideo`
through `@ai-sdk/google` (Gemini API dialect) and `@ai-sdk/google-vertex` (express mode, API key).

The packages come from tests/clients/js/package.json (exact versions, locked by
package-lock.json; `.ci/run` runs `npm ci` there). The driver, tests/clients/js/ai_sdk.mjs,
points each provider at cinegen with `baseURL` and does what the SDK's docs show.

- The Gemini dialect answers a `files/...:download` URL that the SDK downloads itself; its
  default download refuses loopback and private addresses (an SSRF guard), so a user of a
  loopback cinegen passes a `download` function. Both halves are tested: with one the video
  arrives, without one the SDK throws its own `AI_DownloadError`.
- The SDK sends an `Idempotency-Key` (`aisdk_vid_...`) on every create and retries a failed
  create twice; a proxy answers the first create 503 after cinegen started the job, and the
  retry must find that job rather than start a second one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.videos.support import FlakyProxy, videos_server
from tests.clients.seed_harness import Run, check_mp4, client_env, describe, run_process
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("vertex_js")  # the other Node client tests' group

JS = Path(__file__).resolve().parent / "js"
PACKAGES = ("ai", "@ai-sdk/google", "@ai-sdk/google-vertex")
PROVIDERS = ("google", "vertex")
FOUR_SECONDS = (1280, 720), 4 * 24  # what `duration: 4` at Veo's default 720p, 24 fps makes


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    assert path, "node is not installed (see .ci/run)"
    for package in PACKAGES:
        assert (JS / "node_modules" / package / "package.json").is_file(), (
            f"{package} is not installed: run `npm ci` in {JS}"
        )
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with videos_server(tmp_path_factory.mktemp("ai_sdk")) as srv:
        yield srv


def drive(
    node: str, provider: str, scenario: str, base_url: str, srv: ServerProcess, out: Path
) -> tuple[int | None, dict[str, Any], str]:
    """Run the driver: its exit code, its RESULT or SDK_ERROR object, and the run described
    (with the server's log) for assertion messages."""
    argv = [node, str(JS / "ai_sdk.mjs"), provider, scenario, base_url, str(out)]
    run = run_process(Run(f"ai-sdk-{provider}-{scenario}", out, argv), client_env({}), 180)
    for line in run.stdout.splitlines():
        tag, _, payload = line.partition(" ")
        if tag in ("RESULT", "SDK_ERROR"):
            return run.returncode, json.loads(payload), describe(run, srv.log())
    raise AssertionError(f"the driver printed no result\n{describe(run, srv.log())}")


def operation_names(srv: ServerProcess) -> set[str]:
    """Every operation the server holds, listed through REST (both dialects' creates)."""
    with httpx.Client(base_url=srv.url, timeout=30, trust_env=False) as http:
        listed = http.get("/v1beta/operations", params={"pageSize": 1000})
    assert listed.status_code == 200, listed.text
    return {op["name"] for op in listed.json().get("operations", [])}


def check_video(result: dict[str, Any], context: str) -> None:
    size, frames = FOUR_SECONDS
    assert result["count"] == 1 and result["mediaType"] == "video/mp4", context
    check_mp4(Path(result["file"]), size=size, frames=frames, context=lambda: context)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_to_video(node: str, provider: str, server: ServerProcess, tmp_path: Path) -> None:
    code, result, context = drive(node, provider, "loopback-download", server.url, server, tmp_path)
    assert code == 0, context
    check_video(result, context)
    if provider == "google":  # a files/ URL the SDK downloaded (through the download function)
        (video,) = result["providerMetadata"]["google"]["videos"]
        assert video["uri"].startswith(f"{server.url}/v1beta/files/"), context
    else:  # Vertex express mode: the bytes come inline, nothing to download
        (video,) = result["providerMetadata"]["googleVertex"]["videos"]
        assert video == {"mimeType": "video/mp4"}, context


def test_default_download_refuses_loopback(
    node: str, server: ServerProcess, tmp_path: Path
) -> None:
    """The README's note: without a `download` function the SDK's SSRF guard refuses the
    loopback URL cinegen answers; the job itself completed."""
    code, error, context = drive(node, "google", "default-download", server.url, server, tmp_path)
    assert code == 3, context
    assert error["name"] == "AI_DownloadError", context
    assert error["message"] == "URL with IP address 127.0.0.1 is not allowed", context
    assert error["url"].startswith(f"{server.url}/v1beta/files/"), context
    assert not (tmp_path / "google.mp4").exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_retried_create_is_one_operation(
    node: str, provider: str, server: ServerProcess, tmp_path: Path
) -> None:
    """The first create reaches cinegen and starts a job, but the SDK sees a 503 and retries
    with the same key: cinegen answers the first job, and the SDK gets that job's video."""
    before = operation_names(server)
    with FlakyProxy(server.url, failures=1, create_suffix=":predictLongRunning") as proxy:
        code, result, context = drive(
            node, provider, "loopback-download", proxy.url, server, tmp_path
        )
    assert code == 0, context
    keys = [{k.lower(): v for k, v in h.items()}.get("idempotency-key") for h in proxy.creates]
    assert len(keys) == 2 and keys[0] == keys[1], keys  # the failed try and its retry
    assert keys[0] and keys[0].startswith("aisdk_vid_"), keys  # the SDK's own key
    started = operation_names(server) - before
    assert len(started) == 1, f"the retry started another job: {sorted(started)}"
    check_video(result, context)
