"""Gemini-route throughput and latency, as ratios against a bare FastAPI route.

Starts, in this run, a cinegen server (API only: `CINEGEN_WORKERS=0`, so no generation
competes for the two cores) and a bare FastAPI app that returns a constant JSON of the same
size as a poll response, both under the same uvicorn settings. Then drives each with the same
concurrent keep-alive clients and prints requests/s, median and p99 latency, and the ratios.

    python bench/api.py [--seconds 8] [--concurrency 16]

Targets (issue 2): poll throughput ≥ 0.5 × the bare route; create p99 < 50 ms (no uploads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import ServerProcess, free_port  # noqa: E402

BARE_APP = textwrap.dedent(
    """
    import json, sys
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    body = json.loads(sys.argv[2])
    app = FastAPI()

    @app.get("/v1beta/models/{model}/operations/{op_id}")
    async def poll(model: str, op_id: str) -> JSONResponse:
        return JSONResponse(body)

    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000

    def line(self) -> str:
        return (
            f"{self.name:34} {self.rps:8.0f} req/s   median {statistics.median(self.latencies) * 1000:6.2f} ms"
            f"   p99 {self.pct(0.99):6.2f} ms   ({self.requests} requests)"
        )


async def drive(
    name: str, url: str, method: str, body: dict | None, seconds: float, concurrency: int
) -> Result:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                response = await client.request(method, url, json=body)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise SystemExit(f"{name}: {response.status_code} {response.text[:200]}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(name, len(latencies), elapsed, latencies)


def start_bare(poll_body: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port), json.dumps(poll_body)])
    url = f"http://127.0.0.1:{port}/v1beta/models/veo-3.1-generate-preview/operations/x"
    for _ in range(200):
        try:
            if httpx.get(url).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("bare app did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data:
        server = ServerProcess(Path(data), env_extra={"CINEGEN_WORKERS": "0"})
        server.start()
        try:
            create_url = f"{server.url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
            create_body = {
                "instances": [{"prompt": "A drone shot over a canyon at sunset"}],
                "parameters": {"durationSeconds": 8, "seed": 1},
            }
            name = httpx.post(create_url, json=create_body).json()["name"]
            poll_url = f"{server.url}/v1beta/{name}"
            poll_body = httpx.get(poll_url).json()
            bare, bare_url = start_bare(poll_body)
            try:
                print(
                    f"cinegen bench/api.py  pid {os.getpid()}  {os.cpu_count()} cores, "
                    f"{args.concurrency} concurrent clients, {args.seconds:g} s per run"
                )
                print(
                    f"poll response: {len(json.dumps(poll_body))} bytes (bare route returns the same)"
                )
                # Warm both, then measure bare / poll / bare again (drift shows as a gap).
                asyncio.run(drive("warm-up", bare_url, "GET", None, 1, args.concurrency))
                asyncio.run(drive("warm-up", poll_url, "GET", None, 1, args.concurrency))
                bare1 = asyncio.run(
                    drive(
                        "bare FastAPI constant JSON",
                        bare_url,
                        "GET",
                        None,
                        args.seconds,
                        args.concurrency,
                    )
                )
                poll = asyncio.run(
                    drive(
                        "GET operations/{id} (poll)",
                        poll_url,
                        "GET",
                        None,
                        args.seconds,
                        args.concurrency,
                    )
                )
                bare2 = asyncio.run(
                    drive(
                        "bare FastAPI (again)",
                        bare_url,
                        "GET",
                        None,
                        args.seconds,
                        args.concurrency,
                    )
                )
                create = asyncio.run(
                    drive(
                        "POST :predictLongRunning (create)",
                        create_url,
                        "POST",
                        create_body,
                        args.seconds,
                        args.concurrency,
                    )
                )
            finally:
                bare.terminate()
                bare.wait()
        finally:
            server.stop()

    for result in (bare1, poll, bare2, create):
        print(result.line())
    bare_rps = (bare1.rps + bare2.rps) / 2
    ratio = poll.rps / bare_rps
    print(f"poll throughput / bare route: {ratio:.2f}   (target ≥ 0.50)")
    print(
        f"poll median latency / bare:   {statistics.median(poll.latencies) / statistics.median(bare1.latencies + bare2.latencies):.2f}"
    )
    print(f"create throughput / bare:     {create.rps / bare_rps:.2f}")
    print(f"create p99: {create.pct(0.99):.1f} ms   (target < 50 ms)")


if __name__ == "__main__":
    main()
