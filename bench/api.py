"""Gemini-route throughput and latency, as ratios against a bare FastAPI route.

Starts, in this run, a cinegen server (API only: `CINEGEN_WORKERS=0`, so no generation
competes for the two cores) and a bare FastAPI app that returns a constant JSON of the same
size as a poll response, both under the same uvicorn settings. Then drives each with the same
concurrent keep-alive clients and prints requests/s, median and p99 latency, and the ratios.

The load generator is wrk when it is installed (`apt-get install wrk`; C, one thread, so the
client does not eat the server's cores), else an httpx asyncio client.

    python bench/api.py [--seconds 8] [--concurrency 8]

Targets (issue 2): poll throughput ≥ 0.5 × the bare route; create p99 < 50 ms (no uploads).

Operations surface on versus off (issue 27): the first cinegen server runs as a team would
run it: metrics on (the default), JSON logs with an access line per request, and an API key
whose per-minute request and poll limits are counted (set far above the load, so counted and
never refused). A second server has `CINEGEN_METRICS=off` (no request timing middleware, no
/metrics), no access lines and no key (no per-minute counting). They are polled in turn,
three runs each; the overhead is 1 − on/off of the best runs' poll throughput, target < 10 %.
The time of one `GET /metrics` scrape is printed too.

Static webhooks (issue 26): a third server is the team server plus 100 webhooks subscribed
to video.generated (50 owned by the key the bench polls and creates with, 50 by a second
key: at most 50 per key), pointing at a loopback receiver. With `CINEGEN_WORKERS=0` nothing
finishes, and webhooks are read only when an operation finishes (its event is built and
queued in the finishing transaction), so poll and create do no webhook work: the ratio
(best of 3 alternating runs, against the team server) shows that, within noise. Where the
work is, job completion: in this process (tests/support/app.py), a scripted engine that
renders two flat frames, two worker threads, N operations finishing with 50 webhooks of
their owner subscribed (a loopback receiver answering 200 at once) versus none, and with
the 50 subscribed but the sender asleep (the events' rows written in the finishing
transaction, nothing sent: that write alone); ratios of operations finished per second
(2 alternating rounds each, the best).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import text_request  # noqa: E402
from tests.support.app import in_process, op_id  # noqa: E402
from tests.support.engines import ScriptedEngine  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402
from tests.support.server import ServerProcess, free_port  # noqa: E402

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
    rps: float
    requests: int
    median_ms: float
    p99_ms: float

    def line(self) -> str:
        return (
            f"{self.name:34} {self.rps:8.0f} req/s   median {self.median_ms:6.2f} ms"
            f"   p99 {self.p99_ms:6.2f} ms   ({self.requests} requests)"
        )


async def _drive_python(
    name: str,
    url: str,
    method: str,
    body: dict | None,
    seconds: float,
    concurrency: int,
    headers: dict[str, str],
) -> Result:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:

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
    ordered = sorted(latencies)
    p99 = ordered[min(int(0.99 * len(ordered)), len(ordered) - 1)]
    return Result(
        name,
        len(latencies) / elapsed,
        len(latencies),
        statistics.median(latencies) * 1000,
        p99 * 1000,
    )


POST_LUA = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
"""


def _wrk_ms(text: str) -> float:
    number = text.rstrip("mus")
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[text[len(number) :]]


def drive(
    name: str,
    url: str,
    method: str,
    body: dict | None,
    seconds: float,
    concurrency: int,
    headers: dict[str, str] | None = None,
) -> Result:
    headers = headers or {}
    if shutil.which("wrk"):
        return _drive_wrk(name, url, method, body, seconds, concurrency, headers)
    return asyncio.run(_drive_python(name, url, method, body, seconds, concurrency, headers))


def _drive_wrk(
    name: str,
    url: str,
    method: str,
    body: dict | None,
    seconds: float,
    concurrency: int,
    headers: dict[str, str],
) -> Result:
    """wrk (C, one thread) keeps the load generator from being the bottleneck on 2 cores."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", url]
    for header, value in headers.items():
        cmd[1:1] = ["-H", f"{header}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if method == "POST":
            script.write(POST_LUA % json.dumps(body))
            cmd[1:1] = ["-s", script.name]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    if "Non-2xx" in out:
        raise SystemExit(f"{name}: non-200 answers\n{out}")
    fields = dict(
        line.split() for line in out.splitlines() if line.strip().startswith(("50%", "99%"))
    )
    rps = float(out.split("Requests/sec:")[1].split()[0])
    requests = int(out.split(" requests in ")[0].split()[-1])
    return Result(name, rps, requests, _wrk_ms(fields["50%"]), _wrk_ms(fields["99%"]))


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


@dataclass
class Cinegen:
    server: ServerProcess
    create_url: str
    poll_url: str
    create_body: dict
    headers: dict[str, str]


def _create_key(data: Path) -> str:
    """A key made as `cinegen keys create` makes one, on the server's data dir."""
    env = {**os.environ, "CINEGEN_DATA_DIR": str(data)}
    made = subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "keys", "create", "--name", "bench"],
        env=env, capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return made.stdout.strip().splitlines()[-1]


def start_cinegen(data: Path, *, team: bool, **env: str) -> Cinegen:
    """A cinegen server (API only) with one operation made. `team`: an API key whose
    per-minute limits are counted (far above the load), JSON logs with access lines."""
    # No workers and no cap on queued jobs: the creates of the burst all stay queued.
    settings = {"CINEGEN_WORKERS": "0", "CINEGEN_MAX_QUEUED_PER_KEY": "0"}
    headers: dict[str, str] = {}
    if team:
        data.mkdir(parents=True, exist_ok=True)
        headers["x-goog-api-key"] = _create_key(data)
        settings |= {
            "CINEGEN_POLLS_PER_MINUTE": "1000000000",
            "CINEGEN_REQUESTS_PER_MINUTE": "1000000000",
            "CINEGEN_LOG_FORMAT": "json",
            "CINEGEN_LOG_ACCESS": "true",
        }
    else:
        settings |= {"CINEGEN_LOG_ACCESS": "false"}
    server = ServerProcess(data, env_extra={**settings, **env})
    server.start()
    create_url = f"{server.url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    create_body = {
        "instances": [{"prompt": "A drone shot over a canyon at sunset"}],
        "parameters": {"durationSeconds": 8, "seed": 1},
    }
    name = httpx.post(create_url, json=create_body, headers=headers).json()["name"]
    return Cinegen(server, create_url, f"{server.url}/v1beta/{name}", create_body, headers)


def scrape_ms(url: str, times: int = 20) -> float:
    """Median time of one GET /metrics (its database query included)."""
    took = []
    with httpx.Client() as client:
        for _ in range(times):
            start = time.perf_counter()
            response = client.get(f"{url}/metrics")
            took.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise SystemExit(f"/metrics: {response.status_code} {response.text[:200]}")
    return statistics.median(took) * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class OnOff:
    off: Result
    on: Result
    off_cpu_us: float  # server CPU per request, best round
    on_cpu_us: float


def surface_on_off(
    on: Cinegen, off: Cinegen, seconds: float, concurrency: int, rounds: int = 3
) -> OnOff:
    """Poll throughput and the server's CPU time per request with metrics, logs and limits
    off and on, alternating for `rounds` rounds; the best round of each (other load on the
    machine only slows a run). CPU per request is the steadier figure on a busy machine."""
    runs: dict[str, list[tuple[Result, float]]] = {"off": [], "on": []}
    for _ in range(rounds):
        for label, side in (("off", off), ("on", on)):
            server = side.server
            assert server.proc is not None
            before = cpu_seconds(server.proc.pid)
            name = "poll, metrics/logs/limits off" if label == "off" else "poll, all on"
            result = drive(name, side.poll_url, "GET", None, seconds, concurrency, side.headers)
            used = cpu_seconds(server.proc.pid) - before
            runs[label].append((result, used / max(result.requests, 1) * 1e6))
    return OnOff(
        off=max((r for r, _ in runs["off"]), key=lambda r: r.rps),
        on=max((r for r, _ in runs["on"]), key=lambda r: r.rps),
        off_cpu_us=min(cpu for _, cpu in runs["off"]),
        on_cpu_us=min(cpu for _, cpu in runs["on"]),
    )


def register_webhooks(target: Cinegen, keys: list[str], uri: str, per_key: int = 50) -> int:
    """`per_key` static webhooks for each key (the first: the one the bench drives with),
    made through `POST /v1beta/webhooks` as a client makes them; returns how many."""
    made = 0
    with httpx.Client(base_url=target.server.url) as client:
        for key in keys:
            for i in range(per_key):
                body = {"name": f"bench {i}", "uri": uri, "subscribed_events": ["video.generated"]}
                response = client.post(
                    "/v1beta/webhooks", json=body, headers={"x-goog-api-key": key}
                )
                if response.status_code != 200:
                    raise SystemExit(f"webhook: {response.status_code} {response.text[:200]}")
                made += 1
    return made


@dataclass
class Versus:
    poll: tuple[Result, Result]  # (reference, hooked), best of the rounds
    create: tuple[Result, Result]
    cpu_us: dict[tuple[str, int], float]  # server CPU per request, best round


def hooked_versus_team(
    team: Cinegen, hooked: Cinegen, seconds: float, concurrency: int, rounds: int = 3
) -> Versus:
    """Poll, then create, throughput of the team server and the one with webhooks, in
    turn for `rounds` rounds (the first swapped each round); the best run of each (other
    load only slows a run) and the least server CPU per request."""
    best: dict[tuple[str, int], Result] = {}
    cpu: dict[tuple[str, int], float] = {}
    sides = [("team", team), ("100 webhooks", hooked)]
    for round_ in range(rounds):  # who goes first swaps each round, so order cancels out
        for label, side in sides if round_ % 2 == 0 else sides[::-1]:
            runs = (
                (f"poll, {label}", side.poll_url, "GET", None),
                (f"create, {label}", side.create_url, "POST", side.create_body),
            )
            for index, (name, url, method, body) in enumerate(runs):
                assert side.server.proc is not None
                before = cpu_seconds(side.server.proc.pid)
                result = drive(name, url, method, body, seconds, concurrency, side.headers)
                used = cpu_seconds(side.server.proc.pid) - before
                key = (label, index)
                if key not in best or result.rps > best[key].rps:
                    best[key] = result
                per = used / max(result.requests, 1) * 1e6
                cpu[key] = min(cpu.get(key, per), per)
    return Versus(
        poll=(best[("team", 0)], best[("100 webhooks", 0)]),
        create=(best[("team", 1)], best[("100 webhooks", 1)]),
        cpu_us=cpu,
    )


def completion_rate(count: int, hooks: int, deliver: bool = True) -> tuple[float, float]:
    """Operations finished per second, submit of the first to the last finish, with `hooks`
    static webhooks of the (anonymous) owner subscribed; and the seconds until all
    `count × hooks` deliveries reached the loopback receiver after the last finish.
    `deliver=False`: the events are queued in the finishing transaction but the sender is
    left asleep (its wake-up unplugged, an hour between polls), so only that write counts."""
    from cinegen.service.webhooks import WebhookFields, WebhookService

    with (
        tempfile.TemporaryDirectory() as tmp,
        Receiver() as receiver,
        in_process(
            Path(tmp) / "data",
            workers=2,
            engines={"preview": ScriptedEngine(steps=1)},
            fetch_allow_hosts="127.0.0.1",
            max_queued_per_key=0,
            log_access=False,
            log_level="WARNING",
            webhook_poll_seconds=1.0 if deliver else 3600.0,
        ) as app,
        app.client() as client,
    ):
        if not deliver:  # the loop keeps its own Event; enqueues now set another one
            app.db.finish_events.wake = threading.Event()
        service = WebhookService(app.db, app.settings)
        for _ in range(hooks):
            fields = WebhookFields(uri=receiver.url(), subscribed_events=["video.generated"])
            service.create(None, fields)
        began = time.time()
        ids = []
        for i in range(count):
            response = client.post(
                "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                json=text_request(f"bench {i}", resolution="720p"),
            )
            response.raise_for_status()
            ids.append(op_id(response.json()["name"]))
        finished = _wait_finished(app.db, ids, timeout=60 + count)
        if not deliver:
            return count / (finished - began), float("nan")
        receiver.wait_for(count * hooks, timeout=120 + count * hooks / 10)
        delivered = time.time()
        return count / (finished - began), max(delivered - finished, 0.0)


def _wait_finished(db: object, ids: list[str], timeout: float) -> float:
    """The latest finish time of `ids` (epoch s), once every one has a usage row."""
    deadline = time.monotonic() + timeout
    pending, last = list(ids), 0.0
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} of {len(ids)} operations did not finish")
        still = []
        for op in pending:
            usage = db.usage_of(op)  # type: ignore[attr-defined]
            if usage is None:
                still.append(op)
            else:
                last = max(last, usage["finish_time"].timestamp())
        pending = still
        if pending:
            time.sleep(0.05)
    return last


@dataclass
class Completion:
    plain: float  # operations/s, no webhooks
    queued: float  # `hooks` subscribed, events queued, the sender asleep
    delivered: float  # `hooks` subscribed, delivered as they come
    drain_s: float  # deliveries' arrival after the last finish, best delivered round


def completion_versus(count: int, hooks: int, rounds: int = 2) -> Completion:
    """Best operations/s of each variant over `rounds` alternating rounds."""
    plain: list[float] = []
    queued: list[float] = []
    delivered: list[tuple[float, float]] = []
    for _ in range(rounds):
        plain.append(completion_rate(count, 0)[0])
        queued.append(completion_rate(count, hooks, deliver=False)[0])
        delivered.append(completion_rate(count, hooks))
    best = max(delivered)
    return Completion(max(plain), max(queued), best[0], best[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--operations", type=int, default=100, help="operations per completion round"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data, Receiver() as receiver:
        team = start_cinegen(Path(data) / "on", team=True)
        quiet = start_cinegen(Path(data) / "off", team=False, CINEGEN_METRICS="off")
        (Path(data) / "hooks").mkdir()
        second_key = _create_key(Path(data) / "hooks")
        hooked = start_cinegen(
            Path(data) / "hooks", team=True, CINEGEN_FETCH_ALLOW_HOSTS="127.0.0.1"
        )
        hooks = register_webhooks(
            hooked, [hooked.headers["x-goog-api-key"], second_key], receiver.url()
        )
        server, poll_url, key = team.server, team.poll_url, team.headers
        try:
            poll_body = httpx.get(poll_url, headers=key).json()
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
                drive("warm-up", bare_url, "GET", None, 1, args.concurrency)
                drive("warm-up", poll_url, "GET", None, 1, args.concurrency, key)
                bare1 = drive(
                    "bare FastAPI constant JSON",
                    bare_url,
                    "GET",
                    None,
                    args.seconds,
                    args.concurrency,
                )
                poll = drive(
                    "GET operations/{id} (poll)",
                    poll_url,
                    "GET",
                    None,
                    args.seconds,
                    args.concurrency,
                    key,
                )
                bare2 = drive(
                    "bare FastAPI (again)", bare_url, "GET", None, args.seconds, args.concurrency
                )
                drive("warm-up", quiet.poll_url, "GET", None, 1, args.concurrency)
                onoff = surface_on_off(team, quiet, args.seconds, args.concurrency)
                scrape = scrape_ms(server.url)
                create = drive(
                    "POST :predictLongRunning (create)",
                    team.create_url,
                    "POST",
                    team.create_body,
                    args.seconds,
                    args.concurrency,
                    key,
                )
                drive("warm-up", hooked.poll_url, "GET", None, 1, args.concurrency, hooked.headers)
                versus = hooked_versus_team(team, hooked, args.seconds, args.concurrency)
            finally:
                bare.terminate()
                bare.wait()
        finally:
            server.stop()
            quiet.server.stop()
            hooked.server.stop()
    done = completion_versus(args.operations, 50)

    print(
        f"load generator: {'wrk' if shutil.which('wrk') else 'httpx (install wrk for a lighter one)'}"
    )
    for result in (bare1, poll, bare2, onoff.off, onoff.on, create):
        print(result.line())
    bare_rps = (bare1.rps + bare2.rps) / 2
    bare_median = (bare1.median_ms + bare2.median_ms) / 2
    print(f"poll throughput / bare route: {poll.rps / bare_rps:.2f}   (target >= 0.50)")
    print(f"poll median latency / bare:   {poll.median_ms / bare_median:.2f}")
    print(f"create throughput / bare:     {create.rps / bare_rps:.2f}")
    print(f"create p99: {create.p99_ms:.1f} ms   (target < 50 ms)")
    ratio = onoff.on.rps / onoff.off.rps
    print(
        "poll throughput, metrics + JSON access logs + key limits on / off "
        f"(best of 3 alternating runs each): {ratio:.3f}   "
        f"overhead {100 * (1 - ratio):.1f} %   (target < 10 %)"
    )
    cpu = onoff.on_cpu_us / onoff.off_cpu_us
    print(
        f"server CPU per poll, on / off: {onoff.on_cpu_us:.0f} / "
        f"{onoff.off_cpu_us:.0f} us = {cpu:.3f}   overhead {100 * (cpu - 1):.1f} %"
    )
    print(f"GET /metrics (one scrape, median of 20): {scrape:.2f} ms")
    print(f"static webhooks registered on the third server: {hooks} (50 of them the bench key's)")
    for result in (*versus.poll, *versus.create):
        print(result.line())
    for index, (label, (ref, hook)) in enumerate(
        (("poll", versus.poll), ("create", versus.create))
    ):
        team_cpu, hook_cpu = versus.cpu_us[("team", index)], versus.cpu_us[("100 webhooks", index)]
        print(
            f"{label} throughput, 100 webhooks / team server (best of 3 alternating): "
            f"{hook.rps / ref.rps:.3f}   server CPU per request {hook_cpu:.0f} / "
            f"{team_cpu:.0f} us = {hook_cpu / team_cpu:.3f}"
        )
    print(
        "  (no webhook work expected in either: webhooks are read only when an operation "
        "finishes, and these servers run no workers)"
    )
    print(
        f"job completion, {args.operations} operations, 2 workers, scripted engine, "
        "best of 2 alternating rounds:"
    )
    print(f"  no webhooks                          {done.plain:6.1f} ops/s")
    print(
        f"  50 subscribed, events queued only    {done.queued:6.1f} ops/s"
        f"   / none = {done.queued / done.plain:.3f}"
    )
    print(
        f"  50 subscribed, delivered meanwhile   {done.delivered:6.1f} ops/s"
        f"   / none = {done.delivered / done.plain:.3f}   (all {args.operations * 50} "
        f"deliveries in {done.drain_s:.1f} s after the last finish; sender and receiver "
        "share this process and its 2 cores)"
    )


if __name__ == "__main__":
    main()
