"""Scale-out figures (issue 25), as ratios measured in this one run.

1. Throughput of preview jobs (4 s, 720p) run by `cinegen worker` processes over Redis: one
   worker against two, the same burst of jobs (all created at once, the workers started and
   ready before). Jobs per second from the first create to the last finish, the best of
   `--rounds` alternating rounds. Target: 2 workers >= 1.7 x 1 worker on a 2-core machine.
   The cores the workers got (their CPU seconds per wall second) are printed beside it: one
   worker already uses more than one core (the encoder's threads), and on a machine shared
   with other work the ratio is bounded by the cores left to the workers, not by the queue.
   So the same is measured again with each worker pinned to a core of its own (as if each
   had its own machine or GPU): there the ratio shows what the queue allows.
2. Queue overhead on an idle cluster: the time from a create (the row's create time) to the
   worker's claim (the operation leaves `queued`), p50 and p99, with Redis and one `cinegen worker`,
   and with the in-process queue on SQLite (`CINEGEN_WORKERS=1`, the default) for comparison.
   Each job is cancelled as soon as it is claimed, so that the next create finds the cluster
   idle. Target: p99 < 50 ms with Redis.
3. Poll throughput of one API node (`cinegen serve`, CINEGEN_WORKERS=0) on PostgreSQL against
   the same on SQLite, bench/api.py's method (keep-alive clients, best of the rounds).

    python bench/scale.py [--jobs 12] [--rounds 2] [--samples 40] [--seconds 6] [--concurrency 8]

Redis and PostgreSQL are started here, on loopback, in temporary directories
(tests/support/redis.py, tests/support/postgres.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.api import cpu_seconds, drive, start_cinegen  # noqa: E402
from cinegen.core.operation import State  # noqa: E402
from tests.helpers import text_request  # noqa: E402
from tests.support.app import InProcessServer, in_process, op_id  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer, WorkerProcess  # noqa: E402

MODEL = "veo-3.1-generate-preview"
JOB = {"durationSeconds": 4, "resolution": "720p"}


@dataclass
class Row:
    name: str
    value: float
    unit: str
    note: str = ""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@contextmanager
def cluster(
    base: Path, redis: RedisServer, workers: int, **env: str
) -> Iterator[tuple[InProcessServer, list[WorkerProcess]]]:
    """An API node in this process (no worker threads) and `workers` `cinegen worker`
    processes, on a fresh data dir and an emptied Redis."""
    redis.restart()
    data = base / f"cluster-{time.monotonic_ns()}"
    pool: list[WorkerProcess] = []
    with in_process(data, workers=0, broker_url=redis.url) as api:
        try:
            for index in range(workers):
                worker = WorkerProcess(data, redis.url, name=f"worker-{index}", env_extra=dict(env))
                pool.append(worker.start())
            yield api, pool
        finally:
            for worker in pool:
                worker.stop()


def create(client: httpx.Client, prompt: str) -> str:
    body = text_request(prompt, **JOB)
    response = client.post(f"/v1beta/models/{MODEL}:predictLongRunning", json=body)
    response.raise_for_status()
    return op_id(response.json()["name"])


def wait(check: Callable[[], bool], timeout: float, step: float = 0.0005) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(step)


def state(api: InProcessServer, op: str) -> State:
    row = api.db.get_operation(op)
    assert row is not None
    return row.state


# 1. throughput --------------------------------------------------------------------------


@dataclass
class Burst:
    rate: float  # jobs per second
    cores: float  # the workers' CPU seconds per wall second: the cores they got


def pin(pid: int, core: int) -> None:
    """Every thread of `pid` (and so every thread they start later) on `core` alone."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {core})


def throughput(
    base: Path, redis: RedisServer, workers: int, jobs: int, pinned: bool = False
) -> Burst:
    """A burst of `jobs` preview jobs on `workers` worker processes; `pinned`: each worker
    on a core of its own, as if each had its machine (the API node and Redis float)."""
    with cluster(base, redis, workers) as (api, pool), api.client() as client:
        pids = [worker.proc.pid for worker in pool if worker.proc is not None]
        if pinned:
            for core, pid in enumerate(pids):
                pin(pid, core % (os.cpu_count() or 1))
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        started = time.perf_counter()
        ops = [create(client, f"a harbour at dawn, take {i}") for i in range(jobs)]
        wait(lambda: all(state(api, op).done for op in ops), timeout=900, step=0.05)
        took = time.perf_counter() - started
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        failed = [op for op in ops if state(api, op) != State.SUCCEEDED]
        if failed:
            raise SystemExit(f"{len(failed)} jobs did not succeed")
    return Burst(jobs / took, cpu / took)


# 2. queue overhead ----------------------------------------------------------------------


def claim_latencies(api: InProcessServer, samples: int) -> list[float]:
    """Seconds from a create (the operation row's create time) to its claim (seen here by
    polling the row every 0.5 ms), one job at a time, each cancelled once claimed and
    waited for, so that every create finds the workers idle."""
    took = []
    with api.client() as client:
        for i in range(samples):
            op = create(client, f"a lighthouse, take {i}")
            wait(lambda op=op: state(api, op) != State.QUEUED, timeout=60)  # type: ignore[misc]
            seen = time.time()
            row = api.db.get_operation(op)
            took.append(seen - row.create_time.timestamp())
            client.post(f"/v1beta/models/{MODEL}/operations/{op}:cancel")
            wait(lambda op=op: state(api, op).done, timeout=60, step=0.01)  # type: ignore[misc]
            time.sleep(0.05)  # the worker back at its queue
    return took


def overhead_redis(base: Path, redis: RedisServer, samples: int) -> list[float]:
    with cluster(base, redis, 1) as (api, _pool):
        claim_latencies(api, 3)  # warm: connections, first imports
        return claim_latencies(api, samples)


def overhead_in_process(base: Path, samples: int) -> list[float]:
    with in_process(base / "in-process", workers=1) as api:
        claim_latencies(api, 3)
        return claim_latencies(api, samples)


# 3. poll throughput ---------------------------------------------------------------------


def poll_rps(base: Path, name: str, seconds: float, concurrency: int, **env: str) -> float:
    """Best of 3 runs of keep-alive polls of one operation on an API-only node."""
    node = start_cinegen(base / name, team=False, **env)
    try:
        runs = [
            drive(name, node.poll_url, "GET", None, seconds, concurrency, node.headers)
            for _ in range(3)
        ]
    finally:
        node.server.stop()
    return max(run.rps for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=12, help="jobs per throughput burst")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (best)")
    parser.add_argument("--samples", type=int, default=40, help="creates per latency run")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per poll run")
    parser.add_argument("--concurrency", type=int, default=8, help="poll clients")
    parser.add_argument(
        "--skip", default="", help="comma-separated: throughput,pinned,overhead,poll"
    )
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    rows: list[Row] = []
    print(
        f"cinegen bench/scale.py  {os.cpu_count()} cores, pid {os.getpid()}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="cinegen-scale-") as tmp:
        base = Path(tmp)
        redis = RedisServer(base / "redis").start()
        try:
            if "throughput" not in skip:
                runs: dict[int, list[Burst]] = {1: [], 2: []}
                for _ in range(args.rounds):  # alternating; other load only slows a run
                    for workers in (1, 2):
                        runs[workers].append(throughput(base, redis, workers, args.jobs))
                one = max(runs[1], key=lambda burst: burst.rate)
                two = max(runs[2], key=lambda burst: burst.rate)
                rows += [
                    Row("throughput, 1 worker", one.rate, "jobs/s", f"{args.jobs} jobs 4 s 720p"),
                    Row("throughput, 2 workers", two.rate, "jobs/s"),
                    Row("  2 workers / 1 worker", two.rate / one.rate, "x", "target >= 1.7"),
                    Row("cores the workers got, 1 worker", one.cores, "cores", "CPU s / wall s"),
                    Row("cores the workers got, 2 workers", two.cores, "cores"),
                    Row("CPU per job, 1 worker", one.cores / one.rate, "s"),
                ]
                print_rows(rows)
            if "pinned" not in skip:  # one core per worker: the queue, not the CPU, decides
                runs = {1: [], 2: []}
                for _ in range(args.rounds):
                    for workers in (1, 2):
                        runs[workers].append(
                            throughput(base, redis, workers, args.jobs, pinned=True)
                        )
                one = max(runs[1], key=lambda burst: burst.rate)
                two = max(runs[2], key=lambda burst: burst.rate)
                rows += [
                    Row("throughput, 1 worker on 1 core", one.rate, "jobs/s"),
                    Row("throughput, 2 workers, 1 core each", two.rate, "jobs/s"),
                    Row("  2 workers / 1 worker, pinned", two.rate / one.rate, "x"),
                ]
                print_rows(rows)
            if "overhead" not in skip:
                over_redis = overhead_redis(base, redis, args.samples)
                over_local = overhead_in_process(base, args.samples)
                for label, values in (
                    ("Redis + worker", over_redis),
                    ("SQLite in-process", over_local),
                ):
                    rows += [
                        Row(f"create->claim p50, {label}", percentile(values, 0.5) * 1e3, "ms"),
                        Row(f"create->claim p99, {label}", percentile(values, 0.99) * 1e3, "ms"),
                    ]
                rows.append(
                    Row(
                        "  p50 Redis / in-process",
                        statistics.median(over_redis) / statistics.median(over_local),
                        "x",
                        "p99 target < 50 ms with Redis",
                    )
                )
                print_rows(rows)
        finally:
            redis.stop()
        if "poll" not in skip:
            sqlite = poll_rps(base, "poll-sqlite", args.seconds, args.concurrency)
            pg = PostgresServer()
            pg.start()
            try:
                url = pg.create_database()
                postgres = poll_rps(
                    base, "poll-pg", args.seconds, args.concurrency, CINEGEN_DATABASE_URL=url
                )
            finally:
                pg.close()
            rows += [
                Row("poll, API node on SQLite", sqlite, "req/s", f"{args.concurrency} clients"),
                Row("poll, API node on PostgreSQL", postgres, "req/s"),
                Row("  PostgreSQL / SQLite", postgres / sqlite, "x"),
            ]
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print_rows(rows)


def print_rows(rows: list[Row]) -> None:
    print(f"{'figure':42} {'value':>10}  unit     note")
    for row in rows:
        print(f"{row.name:42} {row.value:10.3f}  {row.unit:8} {row.note}")
    print(flush=True)


if __name__ == "__main__":
    main()
