"""The invisible watermark (media/watermark.py): cost, invisibility, robustness, false positives.

Printed, all measured in this run:
1. cost, over seven 4 s 720p preview text videos (`COST_SCENES`): marking the frames (the
   watermark's own work), against the unmarked video's render + encode time (the target:
   ≤ 10 %); and the whole marked job against the unmarked one, which also counts the encoder
   coding the mark (a still mark on a panning picture costs x264 the most);
   floor: on the costliest scene, what weaker and coarser still marks cost the encoder;
   service: the same scenes through `cinegen serve` and the google-genai SDK, create to done,
   with the watermark on and off;
2. invisibility: PSNR of the marked frames against the unmarked ones, the largest change of
   a pixel, and the change's spread in a flat grey frame;
3. robustness: for each attack (H.264 re-encode at CRF 28, scaling to 50 %, a 10 % crop,
   2 s cut out of the middle, brightness +10 % and −10 %; then crop, 50 % scale and CRF 28
   together) over `--seeds` preview videos of `--size` and `--seconds` (each with a random
   payload and its own prompt), the mean and worst fraction of bits right, how many verdicts
   were right (found), and the lowest z;
4. false positives: the detector over `--unmarked` unmarked preview videos (small and short,
   `--fp-size`, `--fp-seconds`, different prompts and seeds), the count found and the
   largest z against the threshold.

    python bench/watermark.py [--seeds 20] [--size 640x360] [--seconds 6] [--repeats 5]
                              [--unmarked 1000] [--fp-size 320x180] [--fp-seconds 2]
                              [--skip cost,floor,service,invisibility,robustness,fp]

The attack helpers are imported by tests/media/test_watermark.py too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from google import genai
from google.genai import types

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cinegen.core.request import Mode  # noqa: E402
from cinegen.engines.base import RenderSpec  # noqa: E402
from cinegen.engines.preview.engine import PreviewEngine  # noqa: E402
from cinegen.media.clip import FPS  # noqa: E402
from cinegen.media.encode import encode_clip  # noqa: E402
from cinegen.media.watermark import (  # noqa: E402
    AMPLITUDE,
    CHIPS_PER_SIDE,
    PAYLOAD_BITS,
    THRESHOLD,
    Marker,
    detect_watermark,
    watermarked,
)
from tests.support.server import ServerProcess  # noqa: E402

PROMPTS = (
    "a mountain valley at sunset, pan left, rain",
    "a calm sea under a grey sky, static camera",
    "a city street at night, neon lights, dolly forward",
    "a desert with dunes at noon, slow zoom in",
    "a snowy forest in the morning, fog, pan right",
    "a flat white wall, static camera",
)
ENGINE = PreviewEngine()
SERVICE_MODEL = "veo-3.1-generate-preview"

FrameMap = Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]]


def spec(seed: int, width: int, height: int, seconds: float, prompt: str) -> RenderSpec:
    return RenderSpec(
        mode=Mode.TEXT,
        prompt=prompt,
        negative_prompt="",
        width=width,
        height=height,
        fps=FPS,
        num_frames=round(seconds * FPS),
        seed=seed,
        audio=False,
    )


def render(path: Path, s: RenderSpec, payload: int | None) -> Path:
    """A preview video, marked with `payload` (None: unmarked), encoded as a worker does."""
    clip = ENGINE.render(s, lambda _: None)
    encode_clip(clip if payload is None else watermarked(clip, payload), str(path))
    return path


def frames_of(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def write(path: Path, frames: Iterator[np.ndarray], crf: int) -> Path:
    """Frames re-encoded as an uploader would: libx264 at `crf`, default preset, yuv420p."""
    with av.open(str(path), mode="w") as container:
        stream = None
        for index, frame in enumerate(frames):
            if stream is None:
                height, width = frame.shape[:2]
                stream = container.add_stream("libx264", rate=FPS, options={"crf": str(crf)})
                stream.width, stream.height = width - width % 2, height - height % 2
                stream.pix_fmt = "yuv420p"
            even = np.ascontiguousarray(frame[: stream.height, : stream.width])
            video = av.VideoFrame.from_ndarray(even, format="rgb24")
            video.pts = index
            video.time_base = Fraction(1, FPS)
            container.mux(stream.encode(video))
        if stream is not None:
            container.mux(stream.encode(None))
    return path


def _scaled(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    for frame in frames:
        height, width = frame.shape[:2]
        yield cv2.resize(frame, (width // 2, height // 2), interpolation=cv2.INTER_AREA)


def _cropped(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """10 % off each dimension, off-centre (7 % from the left, 3 % from the top)."""
    for frame in frames:
        height, width = frame.shape[:2]
        left, top = round(width * 0.07), round(height * 0.03)
        yield frame[top : top + round(height * 0.9), left : left + round(width * 0.9)]


def _cut(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """2 s out of the middle."""
    kept = list(frames)
    middle = len(kept) // 2
    yield from kept[: max(0, middle - FPS)] + kept[middle + FPS :]


def _brightness(factor: float) -> FrameMap:
    def change(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            yield np.clip(frame.astype(np.float32) * factor, 0, 255).astype(np.uint8)

    return change


def _same(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    return frames


ATTACKS: dict[str, tuple[FrameMap, int]] = {
    "h264 crf 28": (_same, 28),
    "scale 50 %": (_scaled, 23),
    "crop 10 %": (_cropped, 23),
    "cut 2 s": (_cut, 23),
    "brightness +10 %": (_brightness(1.1), 23),
    "brightness -10 %": (_brightness(0.9), 23),
}
"""Each attack: what it does to the frames, and the CRF it is re-encoded at."""


def _crop_then_scale(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    return _scaled(_cropped(frames))


COMBINED: dict[str, tuple[FrameMap, int]] = {"crop+scale+crf 28": (_crop_then_scale, 28)}
"""Beyond the issue's list (the bench only): the attacks together."""


def attack(source: Path, name: str, out: Path) -> Path:
    change, crf = {**ATTACKS, **COMBINED}[name]
    return write(out, change(frames_of(source)), crf)


def bits_right(found: tuple[int, ...], payload: int) -> float:
    sent = [(payload >> (PAYLOAD_BITS - 1 - k)) & 1 for k in range(PAYLOAD_BITS)]
    return sum(a == b for a, b in zip(found, sent, strict=True)) / PAYLOAD_BITS


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


# --------------------------------------------------------------------------- the bench


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU of this process's threads) seconds of `run()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


COST_SCENES = (*PROMPTS, "a mountain valley at sunset, pan left")
"""The cost bench's scenes: the six above, and a pan over a smooth scene, the costliest found
for the encoder: x264 codes such a pan almost for free, but a still mark on moving content it
must code again in every P-frame."""


@dataclass(frozen=True)
class _SceneCost:
    prompt: str
    mark: tuple[float, float]  # (wall, CPU) seconds: marking the frames alone
    plain: tuple[float, float]  # render + encode, unmarked
    marked: tuple[float, float]  # render + encode, marked
    sizes: tuple[int, int]  # the files' bytes, unmarked and marked


def _scene_cost(scratch: Path, prompt: str, repeats: int) -> _SceneCost:
    """Best of `repeats` for each measure, the two jobs alternated so that a busy moment hits
    both alike."""
    s = spec(1, 1280, 720, 4, prompt)
    frames = list(ENGINE.render(s, lambda _: None).frames)
    payload = 0x123456789ABCDEF0

    def mark_only() -> None:
        height, width = frames[0].shape[:2]
        marker = Marker(payload, width, height)
        for frame in frames:
            marker(frame)

    plain: list[tuple[float, float]] = []
    marked: list[tuple[float, float]] = []
    for _ in range(repeats):
        plain.append(_timed(lambda: render(scratch / "plain.mp4", s, None)))
        marked.append(_timed(lambda: render(scratch / "marked.mp4", s, payload)))
    marks = [_timed(mark_only) for _ in range(repeats)]
    return _SceneCost(
        prompt,
        _best(marks),
        _best(plain),
        _best(marked),
        ((scratch / "plain.mp4").stat().st_size, (scratch / "marked.mp4").stat().st_size),
    )


def _best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def cost(scratch: Path, repeats: int) -> None:
    """Marking, and the whole marked job, against render + encode of the same unmarked 4 s
    720p preview video, over the cost scenes."""
    rows = [_scene_cost(scratch, prompt, repeats) for prompt in COST_SCENES]
    print(
        f"cost: 4 s 720p preview text videos ({FPS * 4} frames, rendered at 640x360 and scaled "
        f"by the encoder), best of {repeats}; % of render + encode of the unmarked video"
    )
    print(
        f"  {'scene':<46} {'marking wall':>12} {'CPU':>6} {'job wall':>9} {'job CPU':>8} "
        f"{'file':>7}"
    )
    for row in rows:
        print(
            f"  {row.prompt[:46]:<46} {row.mark[0] / row.plain[0]:>12.1%} "
            f"{row.mark[1] / row.plain[1]:>6.1%} {row.marked[0] / row.plain[0] - 1:>+9.1%} "
            f"{row.marked[1] / row.plain[1] - 1:>+8.1%} {row.sizes[1] / row.sizes[0] - 1:>+7.1%}"
        )
    plain = [sum(row.plain[k] for row in rows) for k in (0, 1)]
    mark = [sum(row.mark[k] for row in rows) for k in (0, 1)]
    marked = [sum(row.marked[k] for row in rows) for k in (0, 1)]
    print(
        f"  {'all ' + str(len(rows)) + ' together':<46} {mark[0] / plain[0]:>12.1%} "
        f"{mark[1] / plain[1]:>6.1%} {marked[0] / plain[0] - 1:>+9.1%} "
        f"{marked[1] / plain[1] - 1:>+8.1%}"
    )
    print(
        "  (marking: the watermark's own work; job: marked against unmarked, the encoder coding "
        "the mark included)"
    )


def _sdk_job(client: genai.Client, prompt: str) -> float:
    """Seconds from the create to the done operation, as a google-genai user sees it."""
    started = time.perf_counter()
    config = types.GenerateVideosConfig(duration_seconds=4, resolution="720p")
    source = types.GenerateVideosSource(prompt=prompt)
    op = client.models.generate_videos(model=SERVICE_MODEL, source=source, config=config)
    while not op.done:
        time.sleep(0.01)
        op = client.operations.get(op)
    if op.error or not (op.response and op.response.generated_videos):
        raise RuntimeError(f"the job failed: {op.error}")
    return time.perf_counter() - started


def service(scratch: Path, repeats: int) -> None:
    """The cost scenes through `cinegen serve` and the google-genai SDK: two servers, one with
    CINEGEN_WATERMARK=false, each job timed from its create to its done operation (polled
    every 10 ms), best of `repeats`."""
    servers = {
        marked: ServerProcess(
            scratch / f"server-{marked}",
            env_extra={"CINEGEN_WATERMARK": str(marked).lower(), "CINEGEN_LOG_LEVEL": "warning"},
        ).start()
        for marked in (False, True)
    }
    try:
        clients = {
            marked: genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=s.url))
            for marked, s in servers.items()
        }
        for client in clients.values():
            _sdk_job(client, "warm up")
        best = {marked: dict.fromkeys(COST_SCENES, float("inf")) for marked in clients}
        for _ in range(repeats):
            for prompt in COST_SCENES:
                for marked, client in clients.items():
                    best[marked][prompt] = min(best[marked][prompt], _sdk_job(client, prompt))
    finally:
        for server in servers.values():
            server.stop()
    print(
        f"service: create -> done through `cinegen serve` (google-genai), 4 s 720p, best of "
        f"{repeats}, CINEGEN_WATERMARK=false against true"
    )
    print(f"  {'scene':<46} {'unmarked':>9} {'marked':>8} {'cost':>7}")
    rows = [(prompt[:46], best[False][prompt], best[True][prompt]) for prompt in COST_SCENES]
    together = (
        f"all {len(COST_SCENES)} together",
        sum(best[False].values()),
        sum(best[True].values()),
    )
    for label, plain_s, marked_s in [*rows, together]:
        print(f"  {label:<46} {plain_s:>8.3f}s {marked_s:>7.3f}s {marked_s / plain_s - 1:>+7.1%}")


STILL_MARKS: dict[str, tuple[float, int]] = {
    f"as shipped ({AMPLITUDE}, {CHIPS_PER_SIDE} chips)": (AMPLITUDE, CHIPS_PER_SIDE),
    "amplitude 0.6 (most pixels unchanged)": (0.6, CHIPS_PER_SIDE),
    "chips 4x larger, amplitude 1.0": (1.0, CHIPS_PER_SIDE // 4),
}
"""Weaker, coarser still marks than cinegen's (the detector is not tuned for them): what the
encoder pays for a mark that stays still while the picture pans."""


def encoder_floor(scratch: Path, repeats: int) -> None:
    """The pan over a smooth scene, marked with each of STILL_MARKS, against unmarked; and
    how each mark reads after a 10 % crop and after crop + 50 % scale + CRF 28, on two
    videos."""
    s = spec(1, 1280, 720, 4, COST_SCENES[-1])
    payload = 0x123456789ABCDEF0

    def job(path: Path, s: RenderSpec, shape: tuple[float, int] | None) -> Path:
        clip = ENGINE.render(s, lambda _: None)
        if shape is not None:
            amplitude, chips = shape
            marker = Marker(payload, *clip.frame_size, amplitude=amplitude, chips_per_side=chips)
            clip = replace(clip, frames=(marker(frame) for frame in clip.frames))
        encode_clip(clip, str(path))
        return path

    print(
        f"encoder floor: {s.prompt!r}, 4 s 720p, best of {repeats}, against unmarked; then "
        "read from 2 marked videos (1280x720, 4 s) after a crop and after all three attacks"
    )
    print(
        f"  {'still mark':<40} {'job wall':>9} {'job CPU':>8} {'file':>8} "
        f"{'crop: bits':>11} {'all three: found':>17}"
    )
    for name, shape in STILL_MARKS.items():
        plain: list[tuple[float, float]] = []
        marked: list[tuple[float, float]] = []
        for _ in range(repeats):
            plain.append(_timed(lambda: job(scratch / "plain.mp4", s, None)))
            marked.append(_timed(lambda: job(scratch / "marked.mp4", s, shape)))  # noqa: B023
        (wall, cpu), (wall_marked, cpu_marked) = _best(plain), _best(marked)
        size = (scratch / "marked.mp4").stat().st_size / (scratch / "plain.mp4").stat().st_size
        crop_bits, found = [], 0
        for seed, prompt in enumerate(PROMPTS[:2]):
            source = job(scratch / "src.mp4", spec(100 + seed, 1280, 720, 4, prompt), shape)
            cropped = detect_watermark(str(attack(source, "crop 10 %", scratch / "atk.mp4")))
            crop_bits.append(bits_right(cropped.bits, payload))
            combined = detect_watermark(str(attack(source, "crop+scale+crf 28", scratch / "a.mp4")))
            found += combined.found and combined.payload == payload
        print(
            f"  {name:<40} {wall_marked / wall - 1:>+9.1%} {cpu_marked / cpu - 1:>+8.1%} "
            f"{size - 1:>+8.1%} {min(crop_bits):>11.1%} {found:>15}/2"
        )


def invisibility() -> None:
    clip = ENGINE.render(spec(2, 1280, 720, 1, PROMPTS[0]), lambda _: None)
    width, height = clip.frame_size
    marker = Marker(0xFEDCBA9876543210, width, height)
    values = [psnr(f, marker(f)) for f in clip.frames]
    marker = Marker(0xFEDCBA9876543210, 1280, 720)
    grey = np.full((720, 1280, 3), 128, np.uint8)
    change = marker(grey).astype(np.int16) - grey
    print(f"invisibility, 720p (the preview engine's frames come at {width}x{height}):")
    print(f"  PSNR marked vs unmarked frames: min {min(values):.2f} dB, mean {np.mean(values):.2f}")
    print(
        f"  flat grey frame: max |change| {int(np.abs(change).max())} levels, "
        f"RMS {float(np.sqrt(np.mean(change.astype(np.float64) ** 2))):.2f}"
    )


def robustness(scratch: Path, seeds: int, size: tuple[int, int], seconds: float) -> None:
    rng = np.random.default_rng(2026)
    table: dict[str, list[tuple[float, bool, float]]] = {
        name: [] for name in {**ATTACKS, **COMBINED}
    }
    table["none"] = []
    for seed in range(seeds):
        payload = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        prompt = PROMPTS[seed % len(PROMPTS)]
        source = render(scratch / "src.mp4", spec(100 + seed, *size, seconds, prompt), payload)
        for name in table:
            path = source if name == "none" else attack(source, name, scratch / "atk.mp4")
            reading = detect_watermark(str(path))
            right = bits_right(reading.bits, payload)
            table[name].append((right, reading.found, reading.score))
    print(f"robustness: {seeds} preview videos {size[0]}x{size[1]}, {seconds:g} s, random payloads")
    print(f"  {'attack':<18} {'bits right mean':>15} {'worst':>7} {'verdicts':>9} {'min z':>7}")
    for name, rows in table.items():
        rights = [r[0] for r in rows]
        good = sum(r[1] for r in rows)
        print(
            f"  {name:<18} {np.mean(rights):>15.3%} {min(rights):>7.1%} "
            f"{good:>4}/{len(rows):<4} {min(r[2] for r in rows):>7.1f}"
        )


def false_positives(scratch: Path, count: int, size: tuple[int, int], seconds: float) -> None:
    found, scores = 0, []
    for index in range(count):
        prompt = PROMPTS[index % len(PROMPTS)]
        s = spec(10_000 + index, *size, seconds, prompt)
        reading = detect_watermark(str(render(scratch / "fp.mp4", s, None)))
        found += reading.found
        scores.append(reading.score)
    print(f"false positives: {count} unmarked preview videos {size[0]}x{size[1]}, {seconds:g} s")
    print(
        f"  found: {found}; z: max {max(scores):.2f}, mean {np.mean(scores):.2f}, "
        f"threshold {THRESHOLD}"
    )


def _size(text: str) -> tuple[int, int]:
    width, height = text.split("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--size", type=_size, default=(640, 360))
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--unmarked", type=int, default=1000)
    parser.add_argument("--fp-size", type=_size, default=(320, 180))
    parser.add_argument("--fp-seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--skip", default="", help="comma list: cost,floor,service,invisibility,robustness,fp"
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="cinegen-wm-") as tmp:
        scratch = Path(tmp)
        if "cost" not in skip:
            cost(scratch, args.repeats)
        if "floor" not in skip:
            encoder_floor(scratch, args.repeats)
        if "service" not in skip:
            service(scratch, args.repeats)
        if "invisibility" not in skip:
            invisibility()
        if "robustness" not in skip:
            robustness(scratch, args.seeds, args.size, args.seconds)
        if "fp" not in skip:
            false_positives(scratch, args.unmarked, args.fp_size, args.fp_seconds)


if __name__ == "__main__":
    main()
