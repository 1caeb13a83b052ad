"""PostgreSQL restarted under a running cinegen (issue 25): while it is down every request
that needs it gets 503 UNAVAILABLE in Google's envelope (never a 500 or a trace) and /readyz
says the database is not ready; once it is back, the same app answers again, the job that
was running completes, and the worker threads and the watchdog are still there to run more."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cinegen.api.errors import DATABASE_UNAVAILABLE
from cinegen.service.health import WORKER_THREAD_PREFIX
from tests.helpers import submit, text_request, wait_done
from tests.support.app import in_process
from tests.support.engines import ScriptedEngine
from tests.support.postgres import PostgresServer

UNAVAILABLE = {"error": {"code": 503, "message": DATABASE_UNAVAILABLE, "status": "UNAVAILABLE"}}


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this module's own: stopping the session's would fail others' tests."""
    server = PostgresServer()
    server.start()
    yield server
    server.close()


def _worker_threads() -> int:
    return sum(
        t.is_alive() and t.name.startswith(WORKER_THREAD_PREFIX) for t in threading.enumerate()
    )


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == UNAVAILABLE


def test_requests_get_503_while_postgres_is_down_and_work_after(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = own_postgres.create_database()
    rendering, release = threading.Event(), threading.Event()

    def hold(step: int) -> None:
        if step == 1:
            rendering.set()
            release.wait(60)

    engine = ScriptedEngine(steps=3, before_step=hold)
    with (
        in_process(
            tmp_path / "data",
            workers=2,
            database_url=url,
            poll_interval_seconds=0.1,
            engines={"preview": engine},
        ) as app,
        app.client() as client,
    ):
        name = submit(client, text_request("a fox in the snow"))
        assert rendering.wait(30)
        threads = _worker_threads()
        own_postgres.stop()
        try:
            _assert_unavailable(client.get(f"/v1beta/{name}"))
            _assert_unavailable(
                client.post(
                    "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                    json=text_request("a second fox"),
                )
            )
            _assert_unavailable(client.get("/v1/videos"))
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == {
                "status": "error",
                "error": "OperationalError",
            }
            time.sleep(0.5)  # the idle worker and the watchdog poll the database meanwhile
        finally:
            own_postgres.start()
        release.set()
        assert wait_done(client, name, timeout=60)["done"] is True
        assert "error" not in client.get(f"/v1beta/{name}").json()
        assert client.get("/readyz").status_code == 200
        assert _worker_threads() == threads == 2
        after = submit(client, text_request("a fox after the outage"))
        assert "error" not in wait_done(client, after, timeout=60)


def test_a_job_that_writes_during_the_outage_runs_again_after_it(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    """The job's progress write fails while PostgreSQL is down: the worker thread survives,
    and once the database is back the watchdog finds the lease expired and the job runs again
    to success (one attempt left of CINEGEN_MAX_ATTEMPTS=2)."""
    url = own_postgres.create_database()
    rendering, outage = threading.Event(), threading.Event()

    def hold(step: int) -> None:
        if step == 1 and not outage.is_set():
            rendering.set()
            outage.wait(60)

    engine = ScriptedEngine(steps=3, before_step=hold)
    with (
        in_process(
            tmp_path / "data",
            workers=1,
            database_url=url,
            poll_interval_seconds=0.1,
            lease_seconds=1.0,
            engines={"preview": engine},
        ) as app,
        app.client() as client,
    ):
        name = submit(client, text_request("a fox in the snow"))
        assert rendering.wait(30)
        own_postgres.stop()
        try:
            outage.set()  # the job reports progress now, and that write fails
            time.sleep(0.5)
            _assert_unavailable(client.get(f"/v1beta/{name}"))
        finally:
            own_postgres.start()
        done = wait_done(client, name, timeout=60)
        assert "error" not in done, done
        assert engine.renders == 2
        assert app.db.get_operation(name.rsplit("/", 1)[-1]).attempts == 2
        assert _worker_threads() == 1
