"""Peak memory of the requests issue 31 (item 2) found unbounded, before and after, in one run.

Images: the probe's PNG of 7999x7999 (a ~190 KB file, 64 Mpx), and the largest image still
accepted (7680x4320, 4x a 4k frame). Each case runs in a fresh subprocess and reports its peak
RSS (`resource.getrusage(...).ru_maxrss`: Pillow's buffers are C allocations tracemalloc cannot
see) above what the process held once the input was built. "before" is the code this change
replaced, copied below (`_decode_before`: a full decode, EXIF transpose copy, RGB conversion);
"after" is cinegen's `check_image` (the submit check) and `decode_image(fit=...)` (the worker's
load, output 1280x720). "uncapped" runs the new code with the pixel limit lifted, to show what
reduction alone saves on the same image.

Vertex polls: a `cinegen serve` subprocess per side makes one 4 s video, whose stored file is
then replaced by `--video-mb` MB of random bytes (an 8 s 4k lossless sample is ~60 MB); then
`--polls` clients poll the finished operation at once, each streaming its body to nowhere.
Reported: the server's peak RSS during the burst (VmHWM after resetting it, less VmRSS before).
"before" runs the same server with the route's previous `_render` put back (a base64 body built
in memory per poll).

    python bench/memory.py [--polls 8] [--video-mb 60] [--skip-images] [--skip-polls]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL = "veo-3.0-generate-preview"
PREFIX = "/v1/projects/p/locations/us-central1/publishers/google/models/" + MODEL


# ----------------------------------------------------------------------------- images


def _solid_png(width: int, height: int) -> bytes:
    from tests.media.images import solid_png

    return solid_png(width, height)


def _decode_before(data: bytes):  # noqa: ANN202 - numpy array
    """`decode_image` as it was before this change (commit e5e0ef6), limit 64 Mpx."""
    import numpy as np
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    if image.size[0] * image.size[1] > 64_000_000:
        raise ValueError("refused")
    image = ImageOps.exif_transpose(image)
    image.load()
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _image_case(name: str, width: int, height: int) -> None:
    """Runs in a subprocess: one case, printed as JSON."""
    from cinegen.media import decode

    data = _solid_png(width, height)
    if name.endswith("uncapped"):
        decode.MAX_IMAGE_PIXELS = 10**9
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = "ok"
    try:
        if name == "submit-before":
            _decode_before(data)
        elif name.startswith("submit-after"):
            decode.check_image(data)
        elif name == "worker-before":
            decode.fit_image(_decode_before(data), 1280, 720)
        elif name.startswith("worker-after"):
            decode.fit_image(decode.decode_image(data, fit=(1280, 720)), 1280, 720)
    except Exception as exc:  # the refusal is an outcome, not a failure
        outcome = f"refused: {str(exc)[:60]}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "case": name,
                "peak_mb": peak / 1024,
                "delta_mb": (peak - base) / 1024,
                "outcome": outcome,
                "bytes": len(data),
            }
        )
    )


def _run_image_case(name: str, width: int, height: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--image-case", name, "--size", f"{width}x{height}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_images() -> None:
    for width, height in ((7999, 7999), (7680, 4320)):
        print(f"\n{width}x{height} PNG (peak RSS above the input, MB; fresh process per case)")
        results = {}
        for name in (
            "submit-before",
            "submit-after",
            "submit-after-uncapped",
            "worker-before",
            "worker-after",
            "worker-after-uncapped",
        ):
            results[name] = r = _run_image_case(name, width, height)
            print(
                f"  {name:24} {r['delta_mb']:8.1f} MB  (peak {r['peak_mb']:7.1f})  "
                f"{r['outcome']}  [{r['bytes'] / 1000:.0f} KB file]"
            )
        for side in ("submit", "worker"):
            before = max(results[f"{side}-before"]["delta_mb"], 0.1)
            for after in (f"{side}-after", f"{side}-after-uncapped"):
                ratio = max(results[after]["delta_mb"], 0.1) / before
                print(f"  ratio {after} / {side}-before: {ratio:.3f}")


# ----------------------------------------------------------------------------- polls

_PATCH_BEFORE = """
import cinegen.api.vertex.routes as routes
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

async def _render(rt, op, owner):
    reader = routes._video_reader(rt, owner)
    if op.done:
        return JSONResponse(await run_in_threadpool(routes.render_operation, op, reader))
    return JSONResponse(routes.render_operation(op, reader))

routes._render = _render
"""


def _serve(side: str) -> None:
    """Runs in a subprocess: `cinegen serve`, with the previous poll rendering for 'before'."""
    if side == "before":
        exec(_PATCH_BEFORE, {})  # noqa: S102 - the bench's own text
    from cinegen.cli.parser import main

    sys.exit(main(["serve"]))


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _poll_side(side: str, polls: int, video_mb: int) -> dict:
    import httpx

    from tests.support.server import free_port

    with tempfile.TemporaryDirectory(prefix=f"cinegen-bench-{side}-") as scratch:
        data_dir = Path(scratch)
        port = free_port()
        env = {
            **os.environ,
            "CINEGEN_DATA_DIR": str(data_dir),
            "CINEGEN_PORT": str(port),
            "CINEGEN_HOST": "127.0.0.1",
            "CINEGEN_WORKERS": "1",
        }
        with open(data_dir / "server.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", side],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=600) as client:
                _wait_up(client, proc)
                body = {
                    "instances": [{"prompt": "A lighthouse at dusk"}],
                    "parameters": {"durationSeconds": 4},
                }
                name = client.post(f"{PREFIX}:predictLongRunning", json=body).json()["name"]
                _wait_done(client, name)
            (video,) = data_dir.rglob("videos/*.mp4")
            video.write_bytes(os.urandom(video_mb * 1024 * 1024))
            rss_before = _status(proc.pid, "VmRSS")
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # reset VmHWM to VmRSS
            digests = _burst(url, name, polls)
            peak = _status(proc.pid, "VmHWM")
        finally:
            proc.terminate()
            proc.wait(30)
    assert len(set(digests)) == 1, "the polls answered different bodies"
    return {
        "rss_before_mb": rss_before,
        "peak_mb": peak,
        "delta_mb": peak - rss_before,
        "body_mb": int(digests[0].split()[1]) / 2**20,
    }


def _wait_up(client, proc: subprocess.Popen) -> None:  # noqa: ANN001
    import httpx

    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            client.get("/v1beta/models", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def _wait_done(client, name: str) -> None:  # noqa: ANN001
    """Waits through the Gemini route, which carries no bytes: a Vertex poll now would make
    (and keep) the body before the bench swaps the video for a larger one."""
    op_id = name.rpartition("/operations/")[2]
    while True:
        state = client.get(f"/v1beta/models/{MODEL}/operations/{op_id}").json()
        if state.get("done"):
            assert "response" in state, state
            return
        time.sleep(0.5)


def _burst(url: str, name: str, polls: int) -> list[str]:
    import httpx

    resource_name = name.rpartition("/operations/")[0]
    digests: list[str] = []
    start = threading.Barrier(polls)

    def poll() -> None:
        digest = hashlib.sha256()
        size = 0
        with httpx.Client(base_url=url, timeout=600) as client:
            start.wait()
            with client.stream(
                "POST", f"/v1/{resource_name}:fetchPredictOperation", json={"operationName": name}
            ) as response:
                assert response.status_code == 200
                for chunk in response.iter_raw(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        digests.append(f"{digest.hexdigest()} {size}")

    threads = [threading.Thread(target=poll) for _ in range(polls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return digests


def bench_polls(polls: int, video_mb: int) -> None:
    print(
        f"\nVertex poll of a finished operation, one {video_mb} MB sample inline, "
        f"{polls} concurrent polls (server peak RSS above its RSS before the burst)"
    )
    results = {side: _poll_side(side, polls, video_mb) for side in ("before", "after")}
    for side, r in results.items():
        print(
            f"  {side:7} {r['delta_mb']:8.1f} MB  (peak {r['peak_mb']:7.1f}, "
            f"before the burst {r['rss_before_mb']:7.1f})"
        )
    print(f"  body per poll: {results['after']['body_mb']:.1f} MB, identical across the polls")
    ratio = max(results["after"]["delta_mb"], 0.1) / max(results["before"]["delta_mb"], 0.1)
    print(f"  ratio after / before: {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=8)
    parser.add_argument("--video-mb", type=int, default=60)
    parser.add_argument("--skip-images", action="store_true")
    parser.add_argument("--skip-polls", action="store_true")
    parser.add_argument("--image-case", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="7999x7999", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.image_case:
        width, height = (int(v) for v in args.size.split("x"))
        _image_case(args.image_case, width, height)
        return
    if args.serve:
        _serve(args.serve)
        return
    if not args.skip_images:
        bench_images()
    if not args.skip_polls:
        bench_polls(args.polls, args.video_mb)


if __name__ == "__main__":
    main()
