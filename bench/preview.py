"""Preview-engine speed and memory: 8 s videos per mode and resolution, against the encode floor.

For each case, a fresh subprocess renders the clip with the preview engine and encodes it with
the production encoder settings (exactly what a worker does), and reports wall time, CPU time
and peak resident memory. The floor is the same encoder fed the same number of frames of one
static image at the same size, measured in this run. Printed per case: wall seconds, the
real-time factor (video seconds / wall seconds), engine+encode wall / floor wall, and peak MB;
then the engine alone: the same clip rendered again in that process with its frames dropped
instead of encoded (wall seconds, and / floor wall), which is what the engine adds to the
encoder's own work.

    python bench/preview.py [--modes text,image,...] [--resolutions 720p,1080p,4k]
                            [--photos 720p|native] [--pair unrelated|moving]

Image to video and first + last frame work below the output size when their images carry no
finer detail (resolution.py): with the default 720p photos that is the case at 4k only;
`--photos native` gives them sharp photos at the output size instead. First + last frame gets
two unrelated photos by default (the flow is rough everywhere); `--pair moving` gives it one
photo with a ball that crosses half of it, which exercises the motion-edge pass.

Targets (issue 3, 2-core machine): 720p 8 s text-to-video under 1.5 s (≥ 5× real time),
engine time ≤ 1.5× the encode floor, 4k 8 s under 12 s, peak memory under 1.5 GB at 4k.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = ("text", "image", "interpolation", "references", "extension")
RESOLUTIONS = ("720p", "1080p", "4k")
SECONDS = 8

CASE = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
import cv2
import numpy as np
from cinegen.core.catalog import frame_size
from cinegen.core.request import Mode
from cinegen.engines.base import InputVideo, RenderSpec
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.media.clip import Clip
from cinegen.media.decode import fit_image, probe_video
from cinegen.media.encode import encode_clip

mode, resolution, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
photo_size = (1280, 720) if sys.argv[4] == "720p" else None
pair = sys.argv[5]
width, height = frame_size(resolution, "16:9")
engine = PreviewEngine()
rng = np.random.default_rng(0)
scratch = Path(tempfile.mkdtemp())


def photo(w, h, seed):
    # A photo-like still: smooth colour, hard-edged shapes and grain. It has detail down to
    # single pixels (so the engine works on it at full size, as on a real photo) and costs
    # the encoder what such a photo does.
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
    image = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cx, cy, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(h // 40, h // 6))
        if rng.random() < 0.5:
            cv2.circle(image, (cx, cy), r, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(image, (cx - r, cy - r // 2), (cx + r, cy + r // 2), colour, -1, cv2.LINE_AA)
    grain = rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    return np.clip(image + grain, 0, 255).astype(np.uint8)


def with_ball(image, x):
    out = image.copy()
    h, w = out.shape[:2]
    cv2.circle(out, (int(x * w), h // 2), h // 12, (220, 30, 30), -1, cv2.LINE_AA)
    return out


def spec(**changes):
    base = dict(mode=Mode.TEXT, prompt="a mountain valley at sunset, pan left, rain",
                negative_prompt="", width=width, height=height, fps=24,
                num_frames=seconds * 24, seed=1, audio=True)
    base.update(changes)
    return RenderSpec(**base)


def encode(s, name):
    start = time.perf_counter()
    encode_clip(engine.render(s, lambda _: None), str(scratch / name))
    return time.perf_counter() - start


if mode == "floor":
    frame = photo(width, height, 1)
    n = seconds * 24
    start = time.perf_counter()
    encode_clip(Clip(iter([frame] * n), n, width, height, 24), str(scratch / "floor.mp4"))
    wall = time.perf_counter() - start
else:
    first = fit_image(photo(*(photo_size or (width, height)), 2), width, height)
    last = fit_image(photo(*(photo_size or (width, height)), 3), width, height)
    if pair == "moving":
        first, last = with_ball(first, 0.25), with_ball(first, 0.75)
    if mode == "text":
        s = spec()
    elif mode == "image":
        s = spec(mode=Mode.IMAGE, first_frame=first)
    elif mode == "interpolation":
        s = spec(mode=Mode.INTERPOLATION, first_frame=first, last_frame=last)
    elif mode == "references":
        s = spec(mode=Mode.REFERENCES, reference_images=(photo(400, 500, 4), photo(300, 300, 5)),
                 reference_types=("asset", "asset"))
    else:  # extension: an 8 s input this engine made, then 7 s more
        encode(spec(seed=9), "input.mp4")
        info = probe_video(str(scratch / "input.mp4"))
        video = InputVideo(str(scratch / "input.mp4"), info.width, info.height,
                           info.num_frames, info.fps, info.has_audio)
        s = spec(mode=Mode.EXTENSION, input_video=video, num_frames=info.num_frames + 7 * 24)
    wall = encode(s, "out.mp4")
usage = resource.getrusage(resource.RUSAGE_SELF)
result = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}
if mode != "floor":  # then the engine alone: the same frames rendered and dropped, no encoder
    start = time.perf_counter()
    for _ in engine.render(s, lambda _: None).frames:
        pass
    result["engine"] = time.perf_counter() - start
print(json.dumps(result))
"""


def run_case(
    mode: str, resolution: str, photos: str, pair: str, seconds: int = SECONDS
) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CASE, mode, resolution, str(seconds), photos, pair],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--resolutions", default=",".join(RESOLUTIONS))
    parser.add_argument(
        "--photos",
        choices=("720p", "native"),
        default="720p",
        help="input images for image / first+last frame: 720p photos fitted to the output size "
        "(a 4k request from an ordinary photo), or photos made at the output size (sharp 4k)",
    )
    parser.add_argument(
        "--pair",
        choices=("unrelated", "moving"),
        default="unrelated",
        help="first + last frame: two unrelated photos, or one photo with a ball crossing it",
    )
    args = parser.parse_args()
    print(
        f"{'case':26} {'wall s':>7} {'x real time':>11} {'/ floor':>8} {'peak MB':>8} "
        f"{'engine alone s':>15} {'/ floor':>8}"
    )
    for resolution in args.resolutions.split(","):
        floors: dict[int, dict[str, float]] = {}
        for mode in args.modes.split(","):
            if mode == "extension" and resolution != "720p":
                continue  # Veo extends 720p videos only
            # An extension's output is the 8 s input plus 7 s: its floor is 15 s of frames.
            seconds = SECONDS + (7 if mode == "extension" else 0)
            if seconds not in floors:
                floors[seconds] = floor = run_case(
                    "floor", resolution, args.photos, args.pair, seconds
                )
                print(
                    f"{f'encode floor {resolution} {seconds} s':26} {floor['wall']:7.2f} "
                    f"{seconds / floor['wall']:11.1f} {1.0:8.2f} {floor['peak_mb']:8.0f}"
                )
            case = run_case(mode, resolution, args.photos, args.pair)
            floor_wall = floors[seconds]["wall"]
            print(
                f"{mode + ' ' + resolution:26} {case['wall']:7.2f} "
                f"{seconds / case['wall']:11.1f} {case['wall'] / floor_wall:8.2f} "
                f"{case['peak_mb']:8.0f} {case['engine']:15.2f} {case['engine'] / floor_wall:8.2f}"
            )


if __name__ == "__main__":
    main()
