"""Videos expire after the retention period, and using one as an extension input restarts
its clock (as Veo does). In this process, on a clock the test moves: no waiting for hours."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cinegen.service import files
from cinegen.store.db import utcnow
from tests.helpers import operation, sample_uris, submit, text_request
from tests.support.app import InProcessServer, in_process, op_id

RETENTION_HOURS = 48.0


class Clock:
    """`utcnow` for the file service, moved on by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += timedelta(hours=hours)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(files, "utcnow", clock)
    return clock


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[InProcessServer]:
    """Jobs run when the test says; the retention sweeper runs every 50 ms."""
    with in_process(
        tmp_path / "data",
        workers=0,
        retention_hours=RETENTION_HOURS,
        sweep_interval_seconds=0.05,
    ) as server:
        yield server


def generated(app: InProcessServer, client: httpx.Client, body: dict) -> str:
    name = submit(client, body)
    app.run(op_id(name))
    return sample_uris(operation(client, name))[0]


def stored_file(app: InProcessServer, uri: str) -> Path:
    file_id = uri.split("files/")[1].split(":")[0]
    return app.settings.resolved_blob_dir / "videos" / f"{file_id}.mp4"


def gone(path: Path, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not path.exists()


def test_expired_videos_answer_404_and_leave_the_disk(app: InProcessServer, clock: Clock) -> None:
    with app.client() as client:
        uri = generated(app, client, text_request("ephemeral", durationSeconds=4))
        stored = stored_file(app, uri)
        clock.advance(RETENTION_HOURS - 0.01)
        time.sleep(0.2)  # several sweeps: nothing is due yet
        assert stored.is_file() and client.get(uri).status_code == 200

        clock.advance(0.02)
        response = client.get(uri)
        assert response.status_code == 404
        assert "expired" in response.json()["error"]["message"]
        assert gone(stored)  # the sweeper thread deleted it


def test_extension_input_restarts_its_retention_clock(app: InProcessServer, clock: Clock) -> None:
    with app.client() as client:
        uri = generated(app, client, text_request("kept alive", durationSeconds=4))
        clock.advance(RETENTION_HOURS / 2)
        extension = submit(client, {"instances": [{"prompt": "more", "video": {"uri": uri}}]})
        assert extension

        clock.advance(RETENTION_HOURS / 2 + 1)  # past the first period, inside the renewed one
        time.sleep(0.2)
        assert client.get(uri).status_code == 200  # would have expired without the reset
        assert stored_file(app, uri).is_file()

        clock.advance(RETENTION_HOURS / 2)  # past the renewed period too
        assert client.get(uri).status_code == 404
