"""Shared machinery for running the seed document's code samples against a live cinegen.

The samples under `seed_samples/` are copied verbatim from the seed (Python indentation
restored). They poll every 10 s, so a module launches every selected sample at once in a
thread pool (`SampleRunner`) and each test then waits for its own sample and judges it: one
test, one clear failure per sample, and a wall time close to that of the slowest sample.
Each module is one `xdist_group`, so under `pytest -n 2 --dist loadgroup` the Python and the
REST samples run on the two workers, each against that worker's own `server`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "seed_samples"
# The seed documents: a copy of `shared/seeds/` kept with the tests (tests/clients/seeds/).
SEED_DIR = Path(os.environ.get("CINEGEN_SEED_DIR", HERE / "seeds"))
SEED = SEED_DIR / "000_a3744ef1d9bb34af.txt"

# Per sample, queueing included: all samples start at once and the server renders two at a
# time, so under load (the rest of the suite on the same two cores) a sample can wait minutes.
SAMPLE_TIMEOUT_S = float(os.environ.get("CINEGEN_SEED_TIMEOUT", "420"))
# With a `ServerWatch`, a sample is stopped once no operation on its server has moved for
# SAMPLE_STALL_S (a hang shows within minutes however loaded the machine is), or at the cap.
SAMPLE_STALL_S = float(os.environ.get("CINEGEN_SEED_STALL", "150"))
SAMPLE_HARD_TIMEOUT_S = float(os.environ.get("CINEGEN_SEED_HARD_TIMEOUT", "1500"))
API_KEY = "anything"
FPS = 24
EXTENSION_FRAMES = 7 * FPS  # an extension adds 7 s
SIZES = {
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("1080p", "16:9"): (1920, 1080),
    ("4k", "16:9"): (3840, 2160),
}
RESULT_MARKER = "SEED_RESULT "


# ------------------------------------------------------------- preamble pieces (Python)

# What the Python samples (Gemini API and Vertex mode) leave undefined.
IMPORT_TYPES = "from google.genai import types\n"

# `client.models.generate_content` answers with the SDK's own response type holding the PNG,
# so `image.parts[0].as_image()` in the sample is the SDK's own code.
FAKE_NANO_BANANA = """\
from google.genai import models as _seed_models, types as _seed_types
_SEED_PNG = open("nano_banana.png", "rb").read()
_seed_calls = []


def _seed_generate_content(self, *, model, contents, config=None):
    _seed_calls.append(model)
    return _seed_types.GenerateContentResponse(
        candidates=[
            _seed_types.Candidate(
                content=_seed_types.Content(
                    role="model",
                    parts=[_seed_types.Part.from_bytes(data=_SEED_PNG, mime_type="image/png")],
                )
            )
        ]
    )


_seed_models.Models.generate_content = _seed_generate_content
"""


# ---------------------------------------------------------------------------------- images


def _png(
    size: tuple[int, int],
    background: tuple[int, int, int],
    draw: Callable[[ImageDraw.ImageDraw, int, int], None],
) -> bytes:
    image = Image.new("RGB", size, background)
    draw(ImageDraw.Draw(image), *size)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _first(d: ImageDraw.ImageDraw, w: int, h: int) -> None:  # a moonlit tree, warm red sky
    d.ellipse((w * 0.70, h * 0.10, w * 0.85, h * 0.10 + w * 0.15), fill=(255, 250, 220))
    d.rectangle((w * 0.20, h * 0.35, w * 0.26, h), fill=(60, 30, 20))
    d.ellipse((w * 0.05, h * 0.05, w * 0.45, h * 0.50), fill=(120, 20, 30))


def _last(d: ImageDraw.ImageDraw, w: int, h: int) -> None:  # the empty swing, cold blue
    d.rectangle((w * 0.45, 0, w * 0.47, h * 0.70), fill=(230, 230, 255))
    d.rectangle((w * 0.53, 0, w * 0.55, h * 0.70), fill=(230, 230, 255))
    d.rectangle((w * 0.42, h * 0.70, w * 0.58, h * 0.74), fill=(200, 170, 90))


def _kitten(d: ImageDraw.ImageDraw, w: int, h: int) -> None:  # a calico blob in the sun
    d.ellipse((w * 0.25, h * 0.45, w * 0.80, h * 0.85), fill=(240, 240, 235))
    d.ellipse((w * 0.30, h * 0.50, w * 0.50, h * 0.70), fill=(230, 130, 40))
    d.ellipse((w * 0.55, h * 0.55, w * 0.72, h * 0.75), fill=(30, 30, 30))
    d.ellipse((w * 0.05, h * 0.05, w * 0.25, h * 0.25), fill=(255, 235, 80))


def _dress(d: ImageDraw.ImageDraw, w: int, h: int) -> None:  # a pink feathered dress
    d.polygon([(w * 0.5, h * 0.1), (w * 0.9, h * 0.95), (w * 0.1, h * 0.95)], fill=(240, 80, 150))
    d.rectangle((w * 0.4, h * 0.1, w * 0.6, h * 0.35), fill=(250, 140, 190))


def _glasses(d: ImageDraw.ImageDraw, w: int, h: int) -> None:  # heart-ish pink sunglasses
    d.ellipse((w * 0.10, h * 0.25, w * 0.42, h * 0.80), fill=(255, 60, 140))
    d.ellipse((w * 0.58, h * 0.25, w * 0.90, h * 0.80), fill=(255, 60, 140))
    d.rectangle((w * 0.42, h * 0.40, w * 0.58, h * 0.46), fill=(40, 40, 40))


def _woman(d: ImageDraw.ImageDraw, w: int, h: int) -> None:  # dark hair, warm face
    d.ellipse((w * 0.25, h * 0.10, w * 0.75, h * 0.45), fill=(40, 25, 20))
    d.ellipse((w * 0.32, h * 0.16, w * 0.68, h * 0.42), fill=(210, 160, 120))
    d.rectangle((w * 0.30, h * 0.45, w * 0.70, h * 0.95), fill=(250, 120, 170))


@dataclass(frozen=True)
class SeedImage:
    """A PNG made here, standing in for one the seed had another model make."""

    name: str
    size: tuple[int, int]
    png: bytes

    @property
    def b64(self) -> str:
        return base64.b64encode(self.png).decode()


def _make(name: str, size: tuple[int, int], bg: tuple[int, int, int], fn: Callable) -> SeedImage:
    return SeedImage(name, size, _png(size, bg, fn))


# Different aspect ratios on purpose, so the server's fit (crop/pad) is exercised.
IMAGES: dict[str, SeedImage] = {
    img.name: img
    for img in (
        _make("first_image", (1280, 720), (200, 40, 30), _first),  # 16:9, red
        _make("last_image", (960, 720), (20, 50, 200), _last),  # 4:3, blue
        _make("nano_banana", (1024, 1024), (40, 170, 60), _kitten),  # 1:1, green
        _make("dress_image", (768, 1024), (250, 220, 230), _dress),  # 3:4
        _make("glasses_image", (1024, 512), (255, 255, 255), _glasses),  # 2:1
        _make("woman_image", (720, 1280), (60, 190, 200), _woman),  # 9:16
    )
}


# ----------------------------------------------------------------------------------- MP4s


@dataclass
class Probe:
    path: Path
    size_bytes: int
    video_codec: str
    pix_fmt: str
    width: int
    height: int
    rate: Fraction | None
    frames: int  # decoded
    container_frames: int  # as the container says
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None
    audio_seconds: float | None = None
    first_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)
    last_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def summary(self) -> str:
        audio = (
            f"{self.audio_codec} {self.audio_rate} Hz {self.audio_channels} ch "
            f"{self.audio_seconds:.3f} s"
            if self.audio_codec
            else "no audio"
        )
        return (
            f"{self.path.name}: {self.size_bytes} B, {self.video_codec}/{self.pix_fmt} "
            f"{self.width}x{self.height} @ {self.rate} fps, {self.frames} frames decoded "
            f"({self.container_frames} in container), {audio}"
        )


def _mean_rgb(frame: av.VideoFrame) -> tuple[float, float, float]:
    small = frame.reformat(width=64, height=36, format="rgb24").to_ndarray()
    r, g, b = small.reshape(-1, 3).mean(axis=0)
    return float(r), float(g), float(b)


def probe(path: Path) -> Probe:
    """Decode every frame (proof it plays) and every audio packet; report what was found."""
    with av.open(str(path)) as container:
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"
        info = Probe(
            path=path,
            size_bytes=path.stat().st_size,
            video_codec=vstream.codec_context.name,
            pix_fmt=vstream.codec_context.pix_fmt or "",
            width=vstream.codec_context.width,
            height=vstream.codec_context.height,
            rate=vstream.average_rate,
            frames=0,
            container_frames=vstream.frames,
        )
        last = None
        for frame in container.decode(vstream):
            if info.frames == 0:
                info.first_rgb = _mean_rgb(frame)
            info.frames += 1
            last = frame
        if last is not None:
            info.last_rgb = _mean_rgb(last)
    with av.open(str(path)) as container:
        if container.streams.audio:
            astream = container.streams.audio[0]
            ctx = astream.codec_context
            info.audio_codec = ctx.name
            info.audio_rate = ctx.sample_rate
            info.audio_channels = ctx.layout.nb_channels if ctx.layout else ctx.channels
            samples = sum(f.samples for f in container.decode(astream))
            info.audio_seconds = samples / (ctx.sample_rate or 1)
    return info


def check_mp4(
    path: Path,
    *,
    size: tuple[int, int],
    frames: int,
    context: Callable[[], str] = lambda: "",
) -> Probe:
    """Assert that `path` is a playable H.264/AAC MP4 of exactly this size and length (every
    seed sample uses Veo 3.1, so the audio track is always required)."""
    assert path.is_file(), f"{path.name} was not written\n{context()}"
    assert path.stat().st_size > 0, f"{path.name} is empty\n{context()}"
    head = path.read_bytes()[:512]
    assert b"ftyp" in head[:16], (
        f"{path.name} is not an MP4; it starts with {head[:200]!r}\n{context()}"
    )
    try:
        info = probe(path)
    except av.error.FFmpegError as exc:
        raise AssertionError(f"{path.name} does not decode: {exc}\n{context()}") from exc
    problems = []
    if (info.width, info.height) != size:
        problems.append(f"size {info.width}x{info.height}, expected {size[0]}x{size[1]}")
    if info.rate != FPS:
        problems.append(f"rate {info.rate}, expected {FPS}")
    if info.frames != frames:
        problems.append(f"{info.frames} frames decoded, expected {frames}")
    if info.container_frames not in (0, info.frames):
        problems.append(f"container says {info.container_frames} frames, {info.frames} decoded")
    if info.video_codec != "h264" or info.pix_fmt != "yuv420p":
        problems.append(f"video {info.video_codec}/{info.pix_fmt}, expected h264/yuv420p")
    if info.audio_codec != "aac":
        problems.append(f"audio codec {info.audio_codec}, expected aac")
    if info.audio_rate != 48000 or info.audio_channels != 2:
        problems.append(
            f"audio {info.audio_rate} Hz {info.audio_channels} ch, expected 48000 Hz 2 ch"
        )
    if info.audio_seconds is not None and abs(info.audio_seconds - frames / FPS) > 0.1:
        problems.append(f"audio lasts {info.audio_seconds:.3f} s, video {frames / FPS:.3f} s")
    assert not problems, f"{info.summary()}\n- " + "\n- ".join(problems) + f"\n{context()}"
    return info


# ------------------------------------------------------------------------- subprocesses


def client_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without anything that could steer a client elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy")
        and not k.startswith(("GOOGLE_", "GEMINI_", "CINEGEN_"))
        and k not in ("PYTHONPATH",)
    }
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    env.update(extra)
    return env


@dataclass
class Run:
    """One sample's run: what it printed, how it ended, where it worked."""

    name: str
    cwd: Path
    argv: list[str]
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    timed_out: bool = False
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def results(self) -> list[dict[str, Any]]:
        return [
            json.loads(line[len(RESULT_MARKER) :])
            for line in self.stdout.splitlines()
            if line.startswith(RESULT_MARKER)
        ]


def _clip(text: str, lines: int = 60, width: int = 400) -> str:
    out = []
    for line in text.splitlines()[-lines:]:
        out.append(line if len(line) <= width else f"{line[:width]}… [{len(line)} chars]")
    return "\n".join(out)


def describe(run: Run, server_log: str) -> str:
    return (
        f"--- sample {run.name}: rc={run.returncode} timed_out={run.timed_out} "
        f"wall={run.wall_s:.1f}s cwd={run.cwd} {run.note}\n"
        f"--- stdout (tail)\n{_clip(run.stdout)}\n"
        f"--- stderr (tail)\n{_clip(run.stderr)}\n"
        f"--- server log (tail)\n{_clip(server_log, 40)}"
    )


class ServerWatch:
    """Polls a server's operation list and notes when it last changed (an operation created,
    advanced or finished): a slow machine still changes it, a hung server does not."""

    def __init__(self, base_url: str, stall_s: float = SAMPLE_STALL_S, every_s: float = 10.0):
        self.stall_s = stall_s
        self._last_change = time.monotonic()
        self._state: frozenset | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(base_url, every_s), name="server-watch", daemon=True
        )
        self._thread.start()

    def _loop(self, base_url: str, every_s: float) -> None:
        with httpx.Client(
            base_url=base_url, headers={"x-goog-api-key": API_KEY}, timeout=30, trust_env=False
        ) as http:
            while not self._stop.wait(every_s):
                try:
                    response = http.get("/v1beta/operations", params={"pageSize": 1000})
                    operations = response.json().get("operations", [])
                except (httpx.HTTPError, ValueError):
                    continue
                state = frozenset(
                    (
                        op.get("name"),
                        op.get("done"),
                        json.dumps((op.get("metadata") or {}).get("progressPercent")),
                    )
                    for op in operations
                )
                if state != self._state:
                    self._state, self._last_change = state, time.monotonic()

    def idle_s(self) -> float:
        return time.monotonic() - self._last_change

    def stalled(self) -> str | None:
        idle = self.idle_s()
        return f"no operation on the server moved for {idle:.0f} s" if idle > self.stall_s else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# Samples run in sessions of their own (so a kill takes their curl/jq children too), which
# also puts them beyond the terminal's Ctrl-C and a SIGTERM to pytest: a REST sample then polls
# a dead server forever. So each is tied to its runner thread with PR_SET_PDEATHSIG (setpriv,
# util-linux, where present) and the live ones are killed when their SampleRunner closes.
_PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def kill_live_processes() -> None:
    with _LIVE_LOCK:
        for proc in _LIVE:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def run_process(
    run: Run,
    env: dict[str, str],
    timeout: float,
    abort: Callable[[str], str | None] | None = None,
    *,
    watch: ServerWatch | None = None,
) -> Run:
    """Run `run.argv`; kill it at `timeout`, when `watch` says the server stalled, or as soon
    as `abort(stderr line)` names a reason."""
    start = time.monotonic()
    out_path, err_path = run.cwd / "stdout.txt", run.cwd / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            _PDEATHSIG + run.argv,
            cwd=run.cwd,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        with _LIVE_LOCK:
            _LIVE.add(proc)
        seen = 0
        while proc.poll() is None:
            stalled = watch.stalled() if watch is not None else None
            if time.monotonic() - start > timeout or stalled:
                run.timed_out = True
                run.note = f"killed after {time.monotonic() - start:.0f} s: " + (
                    stalled or f"the {timeout:.0f} s limit"
                )
                break
            if abort is not None:
                text = err_path.read_bytes().decode(errors="replace")
                complete = text[: text.rfind("\n") + 1]
                for line in complete[seen:].splitlines():
                    reason = abort(line)
                    if reason:
                        run.note = f"aborted: {reason}"
                        break
                seen = len(complete)
                if run.note:
                    break
            time.sleep(0.25)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    run.returncode = proc.returncode
    run.wall_s = time.monotonic() - start
    run.stdout = out_path.read_bytes().decode(errors="replace")
    run.stderr = err_path.read_bytes().decode(errors="replace")
    return run


class SampleRunner:
    """Starts samples in a thread pool and hands each test its own finished `Run`."""

    def __init__(self, job: Callable[[str], Run], workers: int) -> None:
        self._job = job
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seed")
        self._futures: dict[str, Future[Run]] = {}

    def start(self, name: str) -> None:
        if name not in self._futures:
            self._futures[name] = self._pool.submit(self._job, name)

    def result(self, name: str) -> Run:
        self.start(name)
        return self._futures[name].result()

    def close(self) -> None:
        """Cancel what has not started and kill what still runs (after an interrupt)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        kill_live_processes()
        self._pool.shutdown(wait=True)


def started_samples(
    server_url: str, request: pytest.FixtureRequest, job: Callable[[str, ServerWatch], Run]
) -> Iterator[SampleRunner]:
    """A module fixture's body: start every selected sample at once, each run by
    `job(name, watch)` while one `ServerWatch` follows the server; clean up after the module."""
    watch = ServerWatch(server_url)
    names = selected_params(request, "name")
    pool = SampleRunner(lambda name: job(name, watch), workers=max(1, len(names)))
    for name in names:
        pool.start(name)
    yield pool
    pool.close()
    watch.close()


def selected_params(request: pytest.FixtureRequest, argname: str) -> list[str]:
    """The values of `argname` among the tests of this module that this session will run:
    the samples a module fixture may start at once, before their tests ask for them.

    Under xdist that is only safe when `--dist loadgroup` keeps the module on this worker,
    which shows as the `@group` suffix xdist adds to the node ids. pytest 9.2 ignores that
    suffix (xdist 3.8 sets `item._nodeid`, pytest 9.2 reads `item._id`), so loadgroup
    silently becomes `load` and spreads the module over every worker. Then this returns
    nothing and each test starts its own sample: slower, but nothing runs twice."""
    items = [
        item
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]
    if os.environ.get("PYTEST_XDIST_WORKER") and not all("@" in i.nodeid for i in items):
        return []
    names = []
    for item in items:
        value = item.callspec.params.get(argname)
        if value is not None and value not in names:
            names.append(value)
    return names


# --------------------------------------------------------------------- direct API helpers


def generate_via_rest(
    base_url: str, model: str, body: dict[str, Any], timeout: float = SAMPLE_HARD_TIMEOUT_S
) -> tuple[dict[str, Any], bytes]:
    """predictLongRunning, poll every 0.5 s, download: (final operation, MP4 bytes)."""
    headers = {"x-goog-api-key": API_KEY}
    with httpx.Client(
        base_url=base_url, headers=headers, timeout=60, follow_redirects=True, trust_env=False
    ) as http:
        created = http.post(f"/v1beta/models/{model}:predictLongRunning", json=body)
        assert created.status_code == 200, (created.status_code, created.text)
        name = created.json()["name"]
        deadline = time.monotonic() + timeout
        while True:
            op = http.get(f"/v1beta/{name}")
            assert op.status_code == 200, (op.status_code, op.text)
            if op.json().get("done"):
                break
            assert time.monotonic() < deadline, f"{name} not done after {timeout} s"
            time.sleep(0.5)
        op_json = op.json()
        assert "error" not in op_json, op_json
        uri = op_json["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
        video = http.get(uri)
        assert video.status_code == 200, (video.status_code, video.text[:500])
        return op_json, video.content


def download(uri: str, dest: Path) -> Path:
    with httpx.Client(timeout=60, follow_redirects=True, trust_env=False) as http:
        response = http.get(uri, headers={"x-goog-api-key": API_KEY})
    assert response.status_code == 200, (uri, response.status_code, response.text[:500])
    dest.write_bytes(response.content)
    return dest


def seed_lines() -> list[str] | None:
    return SEED.read_text().split("\n") if SEED.is_file() else None


def header_range(path: Path) -> tuple[int, int]:
    match = re.search(r"lines (\d+)-(\d+)", path.read_text().split("\n", 1)[0])
    assert match, f"{path.name}: the first line must name the seed line range"
    return int(match.group(1)), int(match.group(2))


def assert_looks_like(
    rgb: tuple[float, float, float], image: str, which: str, context: Callable[[], str]
) -> None:
    """The frame's dominant colour channel is the input image's: a loose "honours the input"."""
    img = IMAGES[image]
    want = np.asarray(Image.open(io.BytesIO(img.png)).convert("RGB"), dtype=np.float64)
    want = want.reshape(-1, 3).mean(axis=0)
    got = np.asarray(rgb)
    assert int(np.argmax(got)) == int(np.argmax(want)), (
        f"{which} mean RGB {got.round(1).tolist()} does not look like {image} "
        f"(mean RGB {want.round(1).tolist()})\n{context()}"
    )
