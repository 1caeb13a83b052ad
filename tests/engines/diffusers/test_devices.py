"""One engine per device (CINEGEN_DIFFUSERS_DEVICE=cuda:0,cuda:1 or `all`): the list is
checked at start-up, each device gets its own engine and worker thread, and two requests
render at once, each on its own device, through the server."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from cinegen.app import create_app
from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from cinegen.engines.diffusers.config import RegistryError
from cinegen.engines.diffusers.devices import DevicePool, parse_devices
from cinegen.engines.diffusers.engine import DiffusersEngine
from cinegen.media.clip import Clip
from tests.helpers import sample_uris, submit, text_request, wait_done
from tests.support.app import in_process, job_context, settings_for

pytestmark = pytest.mark.xdist_group("diffusers")


def _frames(mp4: bytes) -> np.ndarray:
    with av.open(io.BytesIO(mp4)) as container:
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])


# ------------------------------------------------------------------ the device list


def test_a_list_names_each_device_in_order() -> None:
    assert parse_devices("cuda:0,cuda:1", cuda_count=2) == ["cuda:0", "cuda:1"]
    assert parse_devices(" cuda:1 , cuda:0", cuda_count=2) == ["cuda:1", "cuda:0"]
    assert parse_devices("cpu,cpu") == ["cpu", "cpu"]
    assert parse_devices("auto") == ["auto"]


def test_all_is_every_visible_gpu_or_the_cpu() -> None:
    assert parse_devices("all", cuda_count=3) == ["cuda:0", "cuda:1", "cuda:2"]
    assert parse_devices("all", cuda_count=0) == ["cpu"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("cuda:0,cuda:2", "names cuda:2, but this machine has 2 visible CUDA device(s)"),
        ("cuda:0,cuda:0", "names a GPU twice"),
        ("cuda,cuda:1", "names a GPU twice"),
        ("auto,cpu", "`auto` cannot be one of several devices"),
        ("gpu0,cuda:1", "'gpu0' is not a device"),
        ("cuda:0,", "'' is not a device"),
    ],
)
def test_a_bad_list_is_a_start_up_error(value: str, words: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_devices(value, cuda_count=2)
    assert words in str(caught.value)


def test_the_server_refuses_gpus_this_machine_lacks(tmp_path: Path, registry_file: Path) -> None:
    settings = settings_for(
        tmp_path / "data", diffusers_registry=registry_file, diffusers_device="cuda:0,cuda:1"
    )
    with pytest.raises(RegistryError, match="names cuda:0, cuda:1, but this machine has 0"):
        create_app(settings)


# ------------------------------------------------------------------ the pool


@dataclass
class _Options:
    device: str


@dataclass
class _Cache:
    opts: _Options
    paths: set[str] = field(default_factory=set)

    def loaded(self) -> list[tuple[str, str]]:
        return [("WanPipeline", path) for path in self.paths]


@dataclass
class _Entry:
    path: str


class _Registry:
    def pipeline_for(self, model: str, mode: str) -> _Entry:
        return _Entry(f"/ckpt/{model}")


class _Engine:
    """Renders by waiting at `gate` (every party must be rendering at once to pass)."""

    def __init__(self, device: str, gate: threading.Barrier | None = None) -> None:
        self.cache = _Cache(_Options(device))
        self.registry = _Registry()
        self.gate = gate
        self.rendered: list[str] = []

    def render(self, spec: RenderSpec, progress: Any) -> Clip:
        if self.gate is not None:
            self.gate.wait(timeout=10)
        self.rendered.append(spec.model)
        self.cache.paths.add(f"/ckpt/{spec.model}")
        return Clip(frames=iter(()), num_frames=0, width=8, height=8, fps=24, notes={})


def _spec(model: str) -> RenderSpec:
    return RenderSpec(Mode.TEXT, "a prompt", "", 16, 16, 24, 8, 1, False, model=model)


def _pool(*engines: _Engine) -> DevicePool:
    return DevicePool(engines)  # type: ignore[arg-type]  # duck-typed test engines


def test_two_devices_render_at_once() -> None:
    gate = threading.Barrier(2)
    first, second = _Engine("cuda:0", gate), _Engine("cuda:1", gate)
    pool = _pool(first, second)
    clips: list[Clip] = []
    threads = [
        threading.Thread(target=lambda m=m: clips.append(pool.render(_spec(m), lambda _: None)))
        for m in ("a", "b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert not gate.broken  # both renders were in flight together
    assert sorted(clip.notes["device"] for clip in clips) == ["cuda:0", "cuda:1"]
    assert len(first.rendered) == len(second.rendered) == 1


def test_an_idle_device_holding_the_checkpoint_is_preferred() -> None:
    first, second = _Engine("cuda:0"), _Engine("cuda:1")
    second.cache.paths.add("/ckpt/wan")
    pool = _pool(first, second)
    for _ in range(3):
        assert pool.render(_spec("wan"), lambda _: None).notes["device"] == "cuda:1"
    assert pool.render(_spec("ltx"), lambda _: None).notes["device"] == "cuda:0"
    assert pool.render(_spec("ltx"), lambda _: None).notes["device"] == "cuda:0"
    assert pool.render(_spec("wan"), lambda _: None).notes["device"] == "cuda:1"


def test_a_failed_render_gives_its_device_back() -> None:
    class Failing(_Engine):
        def render(self, spec: RenderSpec, progress: Any) -> Clip:
            raise RuntimeError("out of luck")

    pool = _pool(Failing("cuda:0"))
    for _ in range(2):  # a device never given back would block the second call forever
        with pytest.raises(RuntimeError):
            pool.render(_spec("wan"), lambda _: None)
    assert len(pool._idle) == 1


# ------------------------------------------------------------------ through the server


def test_two_jobs_run_at_once_one_per_device(
    tmp_path: Path, registry_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two CPU "devices" stand in for two GPUs: each job waits in the denoising call until
    the other is in its own, which only two engines and two worker threads allow."""
    gate = threading.Barrier(2)
    real = DiffusersEngine._generate

    def gated(self: DiffusersEngine, *args: Any, **kwargs: Any) -> Any:
        gate.wait(timeout=60)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DiffusersEngine, "_generate", gated)
    settings = {"diffusers_registry": registry_file, "diffusers_device": "cpu,cpu"}
    with in_process(tmp_path / "data", workers=1, **settings) as server, server.client() as c:
        pool = job_context(server.app).engines["diffusers"]
        assert isinstance(pool, DevicePool)
        assert server.app.state.runtime.queue.workers == 2  # one thread per device
        body = text_request("a lighthouse at dusk", durationSeconds=4, seed=5)
        names = [submit(c, body, "tiny-wan") for _ in range(2)]
        ops = [wait_done(c, name) for name in names]
        assert all("error" not in op for op in ops), ops
        videos = [c.get(sample_uris(op)[0], follow_redirects=True).content for op in ops]
    # the same request and seed, rendered at the same time on two devices: the same frames
    # (nothing process-wide, such as torch's global generator, leaks between the two)
    first, second = (_frames(video) for video in videos)
    assert first.shape[0] == 96 and np.array_equal(first, second)
    assert not gate.broken
    assert [engine.cache.loads for engine in pool.engines] == [1, 1]
    assert all(op["metadata"]["notes"]["device"] == "cpu" for op in ops)
