"""The gateway page's complete Python example (seed 004), run verbatim against cinegen.

`videos_seed/gateway_example.py` is the seed's script with its indentation restored (the seed
text lost it) and nothing else changed. Each of its six scenarios runs as
`python gateway_example.py N` in a subprocess, with only `API_BASE` and the two image URLs
replaced; the URLs point at a loopback image server this module starts, which the cinegen
server is allowed to fetch from. All six start together; each test then judges one.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.api.videos.support import BLUE_PNG, RED_PNG, ImageServer, videos_server
from tests.clients.seed_harness import (
    FPS,
    SAMPLE_TIMEOUT_S,
    SEED_DIR,
    Run,
    SampleRunner,
    check_mp4,
    client_env,
    describe,
    run_process,
    selected_params,
)
from tests.helpers import decode_png, first_and_last_frames, psnr
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("videos_seed")

SCRIPT = Path(__file__).resolve().parent / "videos_seed" / "gateway_example.py"
SEED_NAME = "004_9cad4b82c1612ecc.txt"
OUTPUT = "output_video.mp4"


@dataclass(frozen=True)
class Scenario:
    size: tuple[int, int]
    seconds: int
    first: bytes | None = None  # the image the first frame must show
    last: bytes | None = None
    fetched: tuple[str, ...] = ()  # image paths the server must have downloaded


SCENARIOS = {
    "1": Scenario((1280, 720), 8, first=RED_PNG, fetched=("/red.png",)),
    "2": Scenario((1280, 720), 8, first=RED_PNG, last=BLUE_PNG, fetched=("/red.png", "/blue.png")),
    "3": Scenario((1280, 720), 8),
    "4": Scenario((1280, 720), 6, first=RED_PNG, fetched=("/red.png",)),
    "5": Scenario((720, 1280), 4),
    "6": Scenario((1280, 720), 8, fetched=("/red.png", "/blue.png")),
}


def seed_file() -> Path | None:
    path = SEED_DIR / SEED_NAME
    return path if path.is_file() else None


def script_for(base: str, img1: str, img2: str) -> str:
    """The script with exactly three lines changed: API_BASE, IMG1, IMG2."""
    text = SCRIPT.read_text(encoding="utf-8")
    changes = {
        'API_BASE = "https://new.12ai.org"': f'API_BASE = "{base}"',
        'IMG1 = "https://example.com/image1.jpg"': f'IMG1 = "{img1}"',
        'IMG2 = "https://example.com/image2.jpg"': f'IMG2 = "{img2}"',
    }
    for old, new in changes.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with ImageServer() as server:
        yield server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with videos_server(tmp_path_factory.mktemp("videos_seed")) as proc:
        yield proc


@pytest.fixture(scope="module")
def runner(
    srv: ServerProcess,
    images: ImageServer,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[SampleRunner]:
    env = client_env({"PYTHONIOENCODING": "utf-8"})

    def job(choice: str) -> Run:
        cwd = tmp_path_factory.mktemp(f"scenario_{choice}")
        img1, img2 = (images.url(f"{p}?scenario={choice}") for p in ("/red.png", "/blue.png"))
        text = script_for(srv.url, img1, img2)
        (cwd / SCRIPT.name).write_text(text, encoding="utf-8")
        run = Run(name=choice, cwd=cwd, argv=[sys.executable, SCRIPT.name, choice])
        return run_process(run, env, SAMPLE_TIMEOUT_S)

    pool = SampleRunner(job, workers=len(SCENARIOS))
    for choice in selected_params(request, "choice"):
        pool.start(choice)
    yield pool
    pool.close()


def test_script_is_the_seeds_verbatim() -> None:
    """Same lines in the same order as the seed's code block; only indentation added."""
    seed = seed_file()
    assert seed is not None, (
        f"the seed {SEED_NAME} (tests/clients/seeds/) is the contract: it must be here"
    )
    text = seed.read_text(encoding="utf-8")
    block = text[text.index("import requests\nimport time") :].rstrip("\n").split("\n")
    ours = SCRIPT.read_text(encoding="utf-8").rstrip("\n").split("\n")
    assert [line.strip() for line in ours] == [line.strip() for line in block]


def _resized(png: bytes, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(decode_png(png), size, interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("choice", list(SCENARIOS))
def test_seed_scenario(
    choice: str, runner: SampleRunner, srv: ServerProcess, images: ImageServer
) -> None:
    scenario = SCENARIOS[choice]
    run = runner.result(choice)

    def context() -> str:
        return describe(run, srv.log())

    assert run.returncode == 0 and not run.timed_out, context()
    assert "视频生成成功" in run.stdout and "视频已下载到 output_video.mp4" in run.stdout, context()
    assert "视频生成失败" not in run.stdout, context()
    statuses = re.findall(r"状态: (\S*), 进度: (\d+)", run.stdout)
    assert statuses and statuses[-1] == ("completed", "100"), context()
    path = run.cwd / OUTPUT
    check_mp4(path, size=scenario.size, frames=scenario.seconds * FPS, context=context)
    first, last = first_and_last_frames(path)
    if scenario.first is not None:
        assert psnr(first, _resized(scenario.first, scenario.size)) > 25, context()
    if scenario.last is not None:
        assert psnr(last, _resized(scenario.last, scenario.size)) > 25, context()
    fetched = {path for path, _host in images.requests if path.endswith(f"?scenario={choice}")}
    wanted = {f"{path}?scenario={choice}" for path in scenario.fetched}
    assert fetched == wanted, (fetched, context())
