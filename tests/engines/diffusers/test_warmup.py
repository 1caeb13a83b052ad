"""Warm start (CINEGEN_DIFFUSERS_WARMUP, `cinegen warmup`): every pipeline a model routes to is
loaded and run once at start-up, `/readyz` says `warming` until then and names a failing entry;
the first user request then loads nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cinegen.app import create_app
from cinegen.cli.parser import main
from cinegen.engines.diffusers.engine import DiffusersEngine, Warmed
from cinegen.settings import Settings
from tests.helpers import generate, text_request

pytestmark = pytest.mark.xdist_group("diffusers")


def registry(dirs: dict[str, Path], broken: bool = False) -> str:
    i2v = "/nonexistent/checkpoint" if broken else dirs["wan-i2v"]
    return f"""
[pipelines.wan-t2v]
class = "WanPipeline"
path = "{dirs["wan-t2v"]}"
fps = 8
max_area = 2048
max_frames = 33
steps = 2
guidance_scale = 3.0

[pipelines.wan-i2v]
class = "WanImageToVideoPipeline"
path = "{i2v}"
fps = 8
max_area = 2048
max_frames = 33
steps = 2
guidance_scale = 3.0

[models."tiny-wan"]
text = "wan-t2v"
image = "wan-i2v"
"""


@pytest.fixture
def tiny_registry(tiny_dirs: dict[str, Path], tmp_path: Path) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(registry(tiny_dirs))
    return path


@pytest.fixture
def broken_registry(tiny_dirs: dict[str, Path], tmp_path: Path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(registry(tiny_dirs, broken=True))
    return path


def settings(tmp_path: Path, registry_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        diffusers_registry=registry_path,
        diffusers_device="cpu",
        diffusers_max_loaded=2,
        diffusers_warmup=True,
        workers=1,
    )


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The warm-up's entries wait for `release`; `started` is set once the first one waits."""
    started, release = threading.Event(), threading.Event()
    real = DiffusersEngine.warm

    def warm(self: DiffusersEngine, entry):  # noqa: ANN001, ANN202
        started.set()
        assert release.wait(120)
        return real(self, entry)

    monkeypatch.setattr(DiffusersEngine, "warm", warm)
    yield started, release
    release.set()


def wait_ready(client: TestClient, code: int) -> dict:
    """`/readyz` once the warm-up has finished one way or the other (thread join, no timing)."""
    for thread in threading.enumerate():
        if thread.name == "cinegen-warmup":
            thread.join(120)
    response = client.get("/readyz")
    assert response.status_code == code, response.text
    return response.json()


def test_readyz_warming_then_ready_and_first_request_loads_nothing(
    tmp_path: Path, tiny_registry: Path, held: tuple[threading.Event, threading.Event]
) -> None:
    started, release = held
    app = create_app(settings(tmp_path, tiny_registry))
    engine = app.state.runtime.jobs.engines["diffusers"]
    with TestClient(app, client=("127.0.0.1", 5000)) as client:
        assert started.wait(60)
        assert client.get("/healthz").status_code == 200  # answers while warming
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["error"]["status"] == "UNAVAILABLE" and "warmup" in body["error"]["message"]
        assert body["checks"]["warmup"] == {"status": "warming", "detail": "warming (0/2 entries)"}
        assert engine.cache.loads == 0
        release.set()
        body = wait_ready(client, 200)
        assert body["checks"]["warmup"] == {"status": "ok", "entries": 2}
        loads = engine.cache.loads
        assert loads == 2 and len(engine.cache.loaded()) == 2
        generate(client, text_request("a warm start", seed=3), model="tiny-wan")
        assert engine.cache.loads == loads  # the first request loaded no checkpoint


def test_broken_entry_makes_readyz_name_it(tmp_path: Path, broken_registry: Path) -> None:
    app = create_app(settings(tmp_path, broken_registry))
    with TestClient(app, client=("127.0.0.1", 5000)) as client:
        body = wait_ready(client, 503)
        check = body["checks"]["warmup"]
        assert check == {"status": "error", "entry": "wan-i2v", "error": "EngineError"}
        assert "warmup" in body["error"]["message"]


def test_warm_plan_respects_max_loaded(tmp_path: Path, tiny_registry: Path) -> None:
    from cinegen.core.catalog import Catalog
    from cinegen.engines.diffusers import build_engine

    one = settings(tmp_path, tiny_registry).model_copy(update={"diffusers_max_loaded": 1})
    engine = build_engine(one, Catalog())
    warm, skipped = engine.warm_plan()
    assert [e.name for e in warm] == ["wan-t2v"] and [e.name for e in skipped] == ["wan-i2v"]
    result = engine.warm(warm[0])
    assert isinstance(result, Warmed) and result.shape == "64x32, 5"
    assert engine.cache.loads == 1


def test_cli_warmup_prints_each_entry(
    tiny_registry: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CINEGEN_DIFFUSERS_DEVICE", "cpu")
    monkeypatch.setenv("CINEGEN_DIFFUSERS_MAX_LOADED", "2")
    assert main(["warmup", "--registry", str(tiny_registry)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["wan-t2v", "wan-i2v"]
    assert all("load" in line and "first call" in line for line in lines)


def test_cli_warmup_fails_on_a_broken_entry(
    broken_registry: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CINEGEN_DIFFUSERS_DEVICE", "cpu")
    monkeypatch.setenv("CINEGEN_DIFFUSERS_MAX_LOADED", "2")
    assert main(["warmup", "--registry", str(broken_registry)]) == 1
    captured = capsys.readouterr()
    assert captured.out.split()[0] == "wan-t2v"
    assert "wan-i2v" in captured.err and "FAILED" in captured.err
