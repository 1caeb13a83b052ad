"""C2PA signing cost against the work it follows: a 4 s 720p video rendered by the preview
engine and encoded (with audio), exactly as a worker does; then the same file signed, first
with no kept manifest box (c2pa-rs hashes the whole file and signs, Ed25519) and again with
the box kept (the repeat of the same request, media/c2pa.py ManifestCache); then verified
(service/provenance.py: the manifest, the watermark detector, the tags). Every figure is the median of `--runs`, and
printed as a ratio of the render + encode time measured in this run.

    python bench/provenance.py [--runs 5] [--seconds 4] [--resolution 720p]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cinegen.core.catalog import frame_size  # noqa: E402
from cinegen.core.request import Mode  # noqa: E402
from cinegen.engines.base import RenderSpec  # noqa: E402
from cinegen.engines.preview.engine import PreviewEngine  # noqa: E402
from cinegen.media.encode import EncodedVideo, encode_clip  # noqa: E402
from cinegen.media.provenance import provenance_tags  # noqa: E402
from cinegen.service import credentials  # noqa: E402
from cinegen.service.provenance import verify_video  # noqa: E402
from cinegen.settings import Settings  # noqa: E402

MODEL = "veo-3.1-generate-preview"


def median_seconds(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--resolution", default="720p")
    args = parser.parse_args()
    width, height = frame_size(args.resolution, "16:9")
    spec = RenderSpec(
        Mode.TEXT,
        "a lighthouse in a storm",
        "",
        width,
        height,
        24,
        args.seconds * 24,
        7,
        True,
        model=MODEL,
    )
    engine = PreviewEngine()
    scratch = Path(tempfile.mkdtemp(prefix="cinegen-bench-"))
    settings = Settings(data_dir=scratch / "data")
    unsigned = scratch / "unsigned.mp4"

    def render_encode() -> EncodedVideo:
        clip = engine.render(spec, lambda _: None)
        tags = provenance_tags(engine.name, MODEL, spec.seed)
        return encode_clip(clip, str(unsigned), metadata=tags)

    base = median_seconds(render_encode, args.runs)
    encoded = render_encode()
    signer = credentials.content_signer(settings)  # the dev chain is made here, not timed
    assert signer.cache is not None
    target = scratch / "signed.mp4"

    def sign(fresh: bool) -> None:
        shutil.copyfile(unsigned, target)
        if fresh:
            signer.cache.max_age = -1.0
            signer.cache.prune()
        credentials.sign_sample(settings, replace(encoded, path=str(target)), engine.name, spec, 7)

    copy = median_seconds(lambda: shutil.copyfile(unsigned, target), args.runs)
    fresh = median_seconds(lambda: sign(True), args.runs)
    sign(False)
    kept = median_seconds(lambda: sign(False), args.runs)
    data = target.read_bytes()
    assert verify_video(settings, data).credentials.valid
    verify = median_seconds(lambda: verify_video(settings, data), args.runs)
    size = unsigned.stat().st_size
    print(f"{args.seconds} s {args.resolution}, {size / 1e6:.2f} MB, median of {args.runs} runs")
    print(f"  render + encode (reference)   {base:8.3f} s   1.000")
    for name, seconds in (
        ("sign, new manifest", fresh - copy),
        ("sign, kept manifest box", kept - copy),
        ("verify (C2PA, watermark, tags)", verify),
    ):
        print(f"  {name:<30}{seconds:8.3f} s   {seconds / base:.3f}")
    print(f"  signed file: +{target.stat().st_size - size} bytes (the C2PA box)")
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
