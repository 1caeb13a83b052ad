"""Scale-out over Celery and Redis: an API node in this process (no worker threads, jobs sent
to the broker) and real `cinegen worker` subprocesses on the same database (a SQLite file, or
PostgreSQL: every test runs on both) and blob folder, with a real `redis-server` on loopback
(tests/support/redis.py).

Each fault of issue 25 is a test: a worker SIGKILLed mid-job, a worker that hangs (SIGSTOP),
Redis restarted with its data lost, cancels across processes.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cinegen.core.operation import Operation, State
from tests.helpers import operation, submit, text_request, wait_done, wait_for
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.redis import RedisServer, WorkerProcess, redis_server
from tests.support.server import free_port

FAST = "veo-3.1-fast-generate-preview"
STANDARD = "veo-3.1-generate-preview"
# A preview job of several seconds on this machine: time to kill or stop its worker mid-job.
SLOW = {"resolution": "4k", "durationSeconds": 8}


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def api(tmp_path: Path, redis: RedisServer, database_url: str) -> Iterator[InProcessServer]:
    """The API node, on SQLite and on PostgreSQL (`database_url` is parametrized)."""
    with in_process(
        tmp_path / "data", workers=0, broker_url=redis.url, database_url=database_url
    ) as server:
        yield server


@pytest.fixture
def client(api: InProcessServer) -> Iterator[httpx.Client]:
    with api.client() as c:
        yield c


@pytest.fixture
def workers(api: InProcessServer, redis: RedisServer) -> Iterator[Callable[..., WorkerProcess]]:
    """`workers(models=..., **env)`: a started `cinegen worker` on the API's data dir; every
    one is stopped at the end."""
    started: list[WorkerProcess] = []

    def start(
        models: str = "",
        name: str = "",
        concurrency: int = 1,
        metrics_port: int | None = None,
        **env: str,
    ) -> WorkerProcess:
        worker = WorkerProcess(
            api.settings.data_dir,
            redis.url,
            models=models,
            concurrency=concurrency,
            name=name or f"worker-{len(started)}",
            metrics_port=metrics_port,
            env_extra={
                "CINEGEN_DATABASE_URL": api.settings.resolved_database_url,
                **{f"CINEGEN_{key.upper()}": value for key, value in env.items()},
            },
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


def row(api: InProcessServer, name: str) -> Operation:
    op = api.db.get_operation(op_id(name))
    assert op is not None
    return op


def running_on(api: InProcessServer, name: str, pool: list[WorkerProcess]) -> WorkerProcess:
    """The worker process holding the operation's lease, once it reported progress: the pid
    is the second part of a worker id (cinegen/service/workers.py)."""

    def started() -> bool:
        op = row(api, name)
        assert not op.done, f"the job ended before it was seen running: {op.error_message}"
        return op.state == State.RUNNING and op.progress > 0

    wait_for(started, "the job to run")
    owner, _expires = api.db.lease_of(op_id(name))
    assert owner is not None
    pid = int(owner.split("-")[1])
    return next(w for w in pool if w.proc is not None and w.proc.pid == pid)


def videos_on_disk(api: InProcessServer) -> set[str]:
    """The file ids of every stored video (blob keys end in the file id)."""
    root = api.settings.resolved_blob_dir
    return {path.stem for path in root.rglob("*") if path.is_file() and _is_video(path)}


def _is_video(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(12)[4:8] == b"ftyp"


def kept_files(api: InProcessServer, name: str) -> set[str]:
    return {sample.file_id for sample in row(api, name).samples}


def test_jobs_sent_to_the_broker_complete_on_a_worker(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers()
    names = [submit(client, text_request(f"a lighthouse, take {i}")) for i in range(3)]
    for name in names:
        op = wait_done(client, name, timeout=120)
        assert "error" not in op, op
        assert row(api, name).state == State.SUCCEEDED
        assert row(api, name).attempts == 1
    assert all(op_id(name) in worker.log() for name in names)  # the task ids name them
    assert videos_on_disk(api) == set().union(*(kept_files(api, n) for n in names))


def test_a_worker_serves_the_metrics_of_its_jobs(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    """A job's timings and its end are counted in the worker process that ran it (the API
    node only sent it): `--metrics-port` lets Prometheus scrape them there."""
    port = free_port()
    workers(metrics_port=port)
    name = submit(client, text_request("a lighthouse, counted"))
    assert "error" not in wait_done(client, name, timeout=120)
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    labels = 'engine="preview",mode="text",resolution="720p"'
    assert f"cinegen_job_duration_seconds_count{{{labels}}} 1.0" in scraped.text
    finished = f'mode="text",model="{STANDARD}",state="succeeded"'
    assert f"cinegen_operations_finished_total{{{finished}}} 1.0" in scraped.text
    assert _job_count(scraped.text) == 1  # a new process: this job alone
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 404


def _job_count(exposition: str) -> float:
    """The jobs a /metrics page counts, over every label set."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "cinegen_job_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    )


def test_a_worker_takes_only_the_jobs_of_its_models(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    standard = workers(models=STANDARD, name="standard")
    fast_job = submit(client, text_request("a fast boat"), model=FAST)
    standard_job = submit(client, text_request("a slow boat"), model=STANDARD)
    wait_done(client, standard_job, timeout=120)
    time.sleep(1.0)  # time enough for the standard worker to take the other, were it to
    assert row(api, fast_job).state == State.QUEUED
    fast = workers(models=FAST, name="fast")
    wait_done(client, fast_job, timeout=120)
    assert op_id(standard_job) in standard.log() and op_id(fast_job) not in standard.log()
    assert op_id(fast_job) in fast.log() and op_id(standard_job) not in fast.log()


def test_a_worker_with_concurrency_runs_jobs_side_by_side(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    workers(concurrency=2)  # a thread pool of two: two messages reserved, two jobs at once
    names = [
        submit(client, text_request(f"a long shot {i}", resolution="1080p", durationSeconds=8))
        for i in range(2)
    ]
    wait_for(
        lambda: all(row(api, name).state == State.RUNNING for name in names),
        "both jobs running at once",
    )
    for name in names:
        assert "error" not in wait_done(client, name, timeout=120)
        assert row(api, name).attempts == 1


def test_a_worker_killed_mid_job_leaves_it_to_another(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    pool = [workers(), workers()]
    name = submit(client, text_request("a long tracking shot", **SLOW))
    victim = running_on(api, name, pool)
    victim.kill()
    op = wait_done(client, name, timeout=180)
    assert "error" not in op, op
    done = row(api, name)
    assert (done.state, done.attempts, len(done.samples)) == (State.SUCCEEDED, 2, 1)
    survivor = next(w for w in pool if w is not victim)
    assert op_id(name) in survivor.log()
    assert videos_on_disk(api) == kept_files(api, name)  # one set of videos, nothing orphaned


def test_a_hung_worker_loses_its_lease_to_another(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    pool = [workers(lease_seconds="6"), workers(lease_seconds="6")]
    name = submit(client, text_request("a long tracking shot", **SLOW))
    hung = running_on(api, name, pool)
    hung.signal(signal.SIGSTOP)
    op = wait_done(client, name, timeout=180)
    assert "error" not in op, op
    done = row(api, name)
    assert (done.state, done.attempts, len(done.samples)) == (State.SUCCEEDED, 2, 1)
    hung.signal(signal.SIGCONT)  # it wakes up, finds its lease gone, writes nothing more
    wait_for(lambda: "lease lost" in hung.log(), "the hung worker to see its lease lost")
    time.sleep(0.5)
    assert row(api, name).samples == done.samples
    assert videos_on_disk(api) == kept_files(api, name)


def test_a_hang_past_max_attempts_fails_the_job(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    # A lease longer than the longest step between two reports of a 4k render, on a busy CPU.
    settings = {"lease_seconds": "5", "max_attempts": "1"}
    pool = [workers(**settings), workers(**settings)]
    name = submit(client, text_request("a long tracking shot", **SLOW))
    running_on(api, name, pool).signal(signal.SIGSTOP)
    op = wait_done(client, name, timeout=60)
    assert op["error"]["code"] == 14  # UNAVAILABLE: it stopped once and is not run again
    assert row(api, name).attempts == 1


def test_a_cancel_stops_the_job_on_the_worker_running_it(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    pool = [workers()]
    name = submit(client, text_request("a long tracking shot", **SLOW))
    running_on(api, name, pool)
    started = time.monotonic()
    assert client.post(f"/v1beta/{name}:cancel").status_code == 200
    op = wait_done(client, name, timeout=60)
    stopped_in = time.monotonic() - started
    assert op["error"]["code"] == 1
    assert row(api, name).state == State.CANCELLED
    assert stopped_in < 5.0, stopped_in  # at the next progress report, not at the job's end
    assert videos_on_disk(api) == set()


def test_a_queued_job_cancelled_never_starts(
    api: InProcessServer, client: httpx.Client, workers: Callable[..., WorkerProcess]
) -> None:
    name = submit(client, text_request("a boat that never sails"))
    assert client.post(f"/v1beta/{name}:cancel").status_code == 200
    assert operation(client, name)["error"]["code"] == 1
    worker = workers()  # its message is still in the broker: the worker takes it, and skips it
    wait_for(lambda: "succeeded" in worker.log(), "the worker to take the message")
    assert op_id(name) in worker.log()
    done = row(api, name)
    assert (done.state, done.attempts) == (State.CANCELLED, 0)
    assert videos_on_disk(api) == set()


def test_operations_lost_by_redis_are_sent_again(
    api: InProcessServer,
    client: httpx.Client,
    redis: RedisServer,
    workers: Callable[..., WorkerProcess],
) -> None:
    worker = workers(reconcile_grace_seconds="1")
    first = submit(client, text_request("before the outage"))
    wait_done(client, first, timeout=120)
    worker.stop()
    in_redis = [submit(client, text_request(f"in redis {i}")) for i in range(2)]
    redis.restart()  # the two messages are gone
    worker.start()
    redis.stop()
    refused = submit(client, text_request("while redis is down"))  # accepted all the same
    redis.start()  # empty again; the running worker reconnects
    for name in [*in_redis, refused]:
        op = wait_done(client, name, timeout=120)
        assert "error" not in op, op
        assert row(api, name).attempts == 1
    assert "sent to the broker again" in worker.log()
