"""The broker queue's parts, without worker processes: the Celery settings for long jobs, the
reconciler's turns, `/readyz` with a broker, and `cinegen worker`'s command line. The faults
with real workers: tests/jobs/test_celery_cluster.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from cinegen.cli.parser import build_parser
from cinegen.jobs import reconcile
from cinegen.jobs.celery_queue import CeleryQueue, celery_app, queue_name
from cinegen.store.db import operations, utcnow
from tests.helpers import submit, text_request
from tests.support.app import InProcessServer, in_process, op_id, settings_for
from tests.support.redis import RedisServer, redis_server
from tests.support.server import REPO


@pytest.fixture
def api(tmp_path: Path) -> Iterator[InProcessServer]:
    """An API node whose broker is a closed port: sends fail, and are logged, not raised."""
    with in_process(tmp_path / "data", workers=0, broker_url="redis://127.0.0.1:9/0") as server:
        yield server


def test_the_celery_settings_fit_long_jobs(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, broker_url="redis://127.0.0.1:1/0", job_timeout_seconds=7200)
    conf = celery_app(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result and conf.result_backend is None
    assert conf.task_serializer == "json" and list(conf.accept_content) == ["json"]
    assert conf.broker_transport_options["visibility_timeout"] > 7200


def test_queues_are_named_by_model() -> None:
    assert queue_name("veo-3.1-generate-preview") == "cinegen.veo-3.1-generate-preview"


def test_the_broker_queue_replaces_the_worker_threads(api: InProcessServer) -> None:
    assert isinstance(api.runtime.queue, CeleryQueue)


def test_a_create_while_the_broker_is_down_is_accepted_and_kept(api: InProcessServer) -> None:
    with api.client() as client:
        name = submit(client, text_request("a letter in a bottle"))
    assert api.db.get_operation(op_id(name)).state.value == "queued"


def _age(api: InProcessServer, op: str, seconds: float) -> None:
    """Make an operation look untouched for `seconds`."""
    with api.db.engine.begin() as conn:
        conn.execute(
            update(operations)
            .where(operations.c.id == op)
            .values(update_time=utcnow() - timedelta(seconds=seconds))
        )


def test_the_reconciler_resends_a_stale_queued_operation_once_per_grace(
    api: InProcessServer,
) -> None:
    with api.client() as client:
        stale = op_id(submit(client, text_request("a lost message")))
        fresh = op_id(submit(client, text_request("a message on its way")))
    _age(api, stale, 60)
    sent: list[tuple[str, str]] = []

    def send(op: str, model: str) -> None:
        sent.append((op, model))

    assert reconcile.reconcile(api.db, 30, send) == [stale]
    assert sent == [(stale, "veo-3.1-generate-preview")]
    # Another worker's pass (or this one's, again) within the grace period sends nothing.
    assert reconcile.reconcile(api.db, 30, send) == []
    assert fresh not in [op for op, _ in sent]


def test_two_reconcilers_take_one_turn(api: InProcessServer) -> None:
    with api.client() as client:
        op = op_id(submit(client, text_request("a lost message")))
    _age(api, op, 60)
    assert [reconcile.take_turn(api.db, op, 30) for _ in range(2)] == [True, False]


def test_the_reconciler_leaves_claimed_and_cancelled_operations(api: InProcessServer) -> None:
    with api.client() as client:
        claimed = op_id(submit(client, text_request("taken")))
        cancelled = submit(client, text_request("called off"))
        assert client.post(f"/v1beta/{cancelled}:cancel").status_code == 200
    assert api.db.claim_operation(claimed, "worker-1", 60) is not None
    for op in (claimed, op_id(cancelled)):
        _age(api, op, 60)
    assert reconcile.stale_queued(api.db, 30) == []


def test_a_failed_resend_waits_for_the_next_grace_period(api: InProcessServer) -> None:
    with api.client() as client:
        op = op_id(submit(client, text_request("a lost message")))
    _age(api, op, 60)

    def send(_op: str, _model: str) -> None:
        raise ConnectionError("the broker is down")

    assert reconcile.reconcile(api.db, 30, send) == []
    _age(api, op, 60)
    assert reconcile.reconcile(api.db, 30, lambda _o, _m: None) == [op]


def test_the_reconciler_leaves_what_waits_in_the_broker(api: InProcessServer) -> None:
    with api.client() as client:
        waiting = op_id(submit(client, text_request("behind a long queue")))
        lost = op_id(submit(client, text_request("a lost message")))
    for op in (waiting, lost):
        _age(api, op, 60)
    asked: list[set[str]] = []

    def in_broker(models: set[str]) -> set[str]:
        asked.append(models)
        return {waiting}

    assert reconcile.reconcile(api.db, 30, lambda _o, _m: None, waiting=in_broker) == [lost]
    assert asked == [{"veo-3.1-generate-preview"}]
    # The broker's word unknown (None): every stale operation is sent.
    _age(api, lost, 60)
    sent = reconcile.reconcile(api.db, 30, lambda _o, _m: None, waiting=lambda _m: None)
    assert sorted(sent) == sorted([waiting, lost])


def test_the_queue_lists_the_operations_waiting_in_redis(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path / "redis") as redis,
        in_process(tmp_path / "data", workers=0, broker_url=redis.url) as api,
        api.client() as client,
    ):
        ops = [op_id(submit(client, text_request(f"a queued boat {i}"))) for i in range(3)]
        other = op_id(submit(client, text_request("fast"), model="veo-3.1-fast-generate-preview"))
        queue = api.runtime.queue
        assert queue.waiting({"veo-3.1-generate-preview"}) == set(ops)
        everything = {"veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"}
        assert queue.waiting(everything) == {*ops, other}
        redis.restart()
        assert queue.waiting(everything) == set()


def test_readyz_reports_the_broker(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path / "redis") as redis,
        in_process(tmp_path / "data", workers=0, broker_url=redis.url) as api,
        api.client() as client,
    ):
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["broker"] == {"status": "ok"}
        redis.stop()
        down = client.get("/readyz")
        assert down.status_code == 503
        body = down.json()
        assert body["error"]["status"] == "UNAVAILABLE" and "broker" in body["error"]["message"]
        assert body["checks"]["broker"]["status"] == "error"
        assert "queue" not in body["checks"]  # no worker threads are expected on this node


def test_readyz_recovers_with_the_broker(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    with (
        in_process(tmp_path / "data", workers=0, broker_url=redis.url) as api,
        api.client() as client,
    ):
        assert client.get("/readyz").status_code == 503
        redis.start()
        try:
            assert client.get("/readyz").status_code == 200
        finally:
            redis.stop()


def test_worker_help_says_how_to_pin_a_gpu() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["worker"].format_help()  # type: ignore[attr-defined]
    assert "CUDA_VISIBLE_DEVICES" in text and "CINEGEN_DIFFUSERS_DEVICE=cuda:" in text
    assert "--models" in text and "--concurrency" in text


def _worker(tmp_path: Path, *args: str, broker: str = "") -> subprocess.CompletedProcess[str]:
    env = {"CINEGEN_DATA_DIR": str(tmp_path / "data"), "CINEGEN_BROKER_URL": broker}
    return subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "worker", *args],
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CINEGEN_")}


def test_worker_without_a_broker_exits_2(tmp_path: Path) -> None:
    done = _worker(tmp_path)
    assert done.returncode == 2 and "CINEGEN_BROKER_URL" in done.stderr


def test_worker_with_a_metrics_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _worker(tmp_path, "--metrics-port", str(port), broker="redis://127.0.0.1:9/0")
    assert done.returncode == 2, done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_worker_refuses_a_model_it_does_not_serve(tmp_path: Path) -> None:
    done = _worker(tmp_path, "--models", "veo-9-imaginary", broker="redis://127.0.0.1:9/0")
    assert done.returncode == 2
    assert "veo-9-imaginary" in done.stderr and "veo-3.1-generate-preview" in done.stderr


def test_a_poll_does_not_touch_the_broker(api: InProcessServer) -> None:
    """Polls, lists and downloads on an API node read the database only: they answer while
    the broker is down."""
    with api.client() as client:
        name = submit(client, text_request("a letter in a bottle"))
        assert client.get(f"/v1beta/{name}").status_code == 200
        assert client.get("/v1beta/operations").status_code == 200
