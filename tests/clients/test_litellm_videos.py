"""LiteLLM's `openai/` provider against `/v1/videos`, for real (issue 30, fault 2).

LiteLLM sends no `X-Stainless-*` header (`User-Agent: litellm/…`), so it used to get the
gateway's `""` and `failure`, which a LiteLLM proxy would hand on to its own OpenAI clients.
Its create is OpenAI-shaped (multipart `model`, `prompt`, `seconds`, `size`), so the video now
keeps OpenAI's words. litellm is ~400 MB with its dependencies, too much for the dev extra: it
gets a venv of its own, built once under the test cache (as google-genai 3.x does in
tests/api/vertex/support.py). tests/api/videos/test_status_words.py replays the bytes it sends
without it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.vertex.support import CACHE
from tests.api.videos.support import videos_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("litellm")

LITELLM_VERSION = "1.110.0"  # the version issue 30 tried
DRIVER = """\
import json, sys, time
import litellm

mode, base = sys.argv[1], sys.argv[2]
model = "openai/veo-3.1-fast-generate-preview"
kw = {"api_base": base + "/v1", "api_key": "anything"}
if mode == "create":
    video = litellm.video_generation(
        model=model, prompt=sys.argv[3], seconds="4", size="1280x720", **kw)
    seen = [video.status]
    deadline = time.monotonic() + 240
    while sys.argv[4] == "wait" and video.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, seen
        time.sleep(0.3)
        video = litellm.video_status(video_id=video.id, model=model, **kw)
        seen.append(video.status)
else:
    video = litellm.video_status(video_id=sys.argv[3], model=model, **kw)
    seen = [video.status]
print("RESULT " + json.dumps({"id": video.id, "seen": seen, "error": video.error},
                             default=lambda value: value.model_dump()))
"""


@pytest.fixture(scope="session")
def litellm_python() -> Path:
    """A python with litellm, in a venv of its own under the cache dir (locked, built once)."""
    target = CACHE / f"litellm-{LITELLM_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".ok").is_file():
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
            subprocess.run(
                [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet",
                 "--disable-pip-version-check", f"litellm=={LITELLM_VERSION}"],
                check=True,
            )  # fmt: skip
            (target / ".ok").write_text(LITELLM_VERSION)
    return target / "bin" / "python"


def drive(python: Path, tmp_path: Path, *args: str) -> dict[str, Any]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith(("_PROXY", "_proxy"))},
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price list from GitHub
        "NO_PROXY": "*",
    }
    done = subprocess.run(
        [str(python), str(script), *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with videos_server(tmp_path_factory.mktemp("litellm")) as proc:
        yield proc


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with videos_server(tmp_path_factory.mktemp("litellm_idle"), CINEGEN_WORKERS="0") as proc:
        yield proc


def test_a_litellm_video_is_polled_in_openais_words(
    litellm_python: Path, srv: ServerProcess, tmp_path: Path
) -> None:
    result = drive(litellm_python, tmp_path, "create", srv.url, "a red kite", "wait")
    seen = result["seen"]
    assert seen[0] == "queued" and seen[-1] == "completed", seen
    assert set(seen) <= {"queued", "in_progress", "completed"}, seen


def test_a_failed_litellm_video_says_failed(
    litellm_python: Path, idle: ServerProcess, tmp_path: Path
) -> None:
    created = drive(litellm_python, tmp_path, "create", idle.url, "never made", "no-wait")
    assert created["seen"] == ["queued"]
    with httpx.Client(base_url=idle.url, timeout=30, trust_env=False) as http:
        newest = http.get("/v1/videos", params={"limit": 1}).json()["data"][0]
        assert newest["prompt"] == "never made"
        name = base64.urlsafe_b64decode(newest["id"] + "=" * (-len(newest["id"]) % 4)).decode()
        assert http.post(f"/v1beta/{name}:cancel").status_code == 200
    polled = drive(litellm_python, tmp_path, "status", idle.url, created["id"])
    assert polled["seen"] == ["failed"]
    assert polled["error"]["code"] == "cancelled"
