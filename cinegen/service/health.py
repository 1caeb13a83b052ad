"""Readiness and the database's side of the metrics: cheap checks an orchestrator or a scrape
may run every few seconds.

Readiness asks what a request needs besides this process: the database answers a query on the
operations table (so an unmigrated or replaced database is not ready either), the blob store
takes a small write and gives it back, and, where this process runs jobs, its worker threads
are alive. Error details go to the log; the answer names the failing part and the error's type
only, since `/readyz` is unauthenticated.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from cinegen.core.metrics import QueueRow
from cinegen.core.operation import State
from cinegen.service.files import FileService
from cinegen.settings import Settings
from cinegen.store.db import Database, operations

if TYPE_CHECKING:
    from cinegen.engines.diffusers.devices import DevicePool
    from cinegen.engines.diffusers.engine import DiffusersEngine, Warmed

log = logging.getLogger("cinegen.health")

WORKER_THREAD_PREFIX = "cinegen-worker-"  # jobs/queue.py names its worker threads so
_PROBE_PREFIX = "health"
BROKER_TIMEOUT = 2.0  # seconds: a broker slower than this to connect is not ready
_PING = select(operations.c.id).limit(1)
_UNFINISHED = (
    select(
        operations.c.model,
        operations.c.state,
        func.count(),
        func.min(operations.c.create_time),
        func.min(operations.c.update_time),
    )
    .where(operations.c.state.in_([State.QUEUED.value, State.RUNNING.value]))
    .group_by(operations.c.model, operations.c.state)
)


@dataclass
class Readiness:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(check["status"] == "ok" for check in self.checks.values())

    def failing(self) -> list[str]:
        return [name for name, check in self.checks.items() if check["status"] != "ok"]


def check_database(db: Database) -> None:
    """One indexed read on the operations table, on a fresh pool checkout (a connection the
    pool holds is pinged by it on PostgreSQL)."""
    with db.engine.connect() as conn:
        conn.execute(_PING).all()


def check_blobs(files: FileService) -> None:
    """A small blob written, read back and deleted: the store is reachable and writable."""
    key = f"{_PROBE_PREFIX}/ready-{uuid.uuid4().hex}"
    try:
        files.blobs.write(key, b"ok")
        files.read_blob(key)
    finally:
        files.blobs.delete(key)


def check_broker(url: str) -> None:
    """A connection to the broker (`cinegen worker` takes its jobs from there), made anew
    each time, within `BROKER_TIMEOUT` seconds."""
    from kombu import Connection

    options = {"socket_timeout": BROKER_TIMEOUT, "socket_connect_timeout": BROKER_TIMEOUT}
    with Connection(url, connect_timeout=BROKER_TIMEOUT, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
        conn.default_channel  # noqa: B018 - Redis is asked (a PING) when a channel opens


def alive_worker_threads() -> int:
    return sum(
        thread.is_alive() and thread.name.startswith(WORKER_THREAD_PREFIX)
        for thread in threading.enumerate()
    )


def _run(readiness: Readiness, name: str, check: Callable[[], None]) -> None:
    try:
        check()
    except Exception as exc:
        log.warning("readiness: %s is not ready", name, exc_info=True)
        readiness.checks[name] = {"status": "error", "error": type(exc).__name__}
    else:
        readiness.checks[name] = {"status": "ok"}


class Warmup:
    """Where the diffusers warm start stands (CINEGEN_DIFFUSERS_WARMUP), for `/readyz`: the
    first user request should not pay a checkpoint load or a torch.compile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.finished = False
        self.failed = ""  # the entry that failed
        self.error = ""  # its error's type

    def check(self) -> dict[str, Any]:
        with self._lock:
            if self.failed:
                return {"status": "error", "entry": self.failed, "error": self.error}
            if not self.finished:
                detail = f"warming ({self.done}/{self.total} entries)"
                return {"status": "warming", "detail": detail}
            return {"status": "ok", "entries": self.total}

    def run(self, engine: DiffusersEngine | DevicePool) -> list[Warmed]:
        """Warm each entry that fits in `max_loaded`, in order; stop at the first failure."""
        warm, skipped = engine.warm_plan()
        with self._lock:
            self.total = len(warm)
        if skipped:
            log.info(
                "warm-up: %s not warmed (CINEGEN_DIFFUSERS_MAX_LOADED=%d)",
                ", ".join(e.name for e in skipped),
                engine.cache.opts.max_loaded,
            )
        results: list[Warmed] = []
        for entry in warm:
            try:
                result = engine.warm(entry)
            except Exception as exc:
                log.error("warm-up of %s failed", entry.name, exc_info=True)
                with self._lock:
                    self.failed, self.error = entry.name, type(exc).__name__
                return results
            log.info(
                "warm-up: %s loaded in %.2f s, first call (%s frames) %.2f s",
                result.entry,
                result.load_s,
                result.shape,
                result.call_s,
            )
            results.append(result)
            with self._lock:
                self.done += 1
        with self._lock:
            self.finished = True
        return results


def readiness(
    db: Database, files: FileService, settings: Settings, warmup: Warmup | None = None
) -> Readiness:
    """Every check, each run even when another failed, so the answer names all that fail."""
    result = Readiness()
    if warmup is not None:
        result.checks["warmup"] = warmup.check()
    _run(result, "database", lambda: check_database(db))
    _run(result, "blobs", lambda: check_blobs(files))
    if settings.broker_url:  # jobs run in `cinegen worker` processes, none in this one
        _run(result, "broker", lambda: check_broker(settings.broker_url))
        return result
    alive = alive_worker_threads()
    result.checks["queue"] = {
        "status": "ok" if settings.workers == 0 or alive > 0 else "error",
        "workers": settings.workers,
        "alive": alive,
    }
    if result.checks["queue"]["status"] != "ok":
        result.checks["queue"]["error"] = "no worker thread is alive"
    return result


def queue_rows(db: Database) -> list[QueueRow]:
    """Queued and running operations by model: counts, the oldest create time and the oldest
    last write (progress report or lease renewal); one grouped query on the state index."""
    with db.engine.connect() as conn:
        rows = conn.execute(_UNFINISHED).all()
    return [
        QueueRow(
            model=model,
            state=state,
            count=count,
            oldest_create=_aware(oldest_create),
            oldest_update=_aware(oldest_update),
        )
        for model, state, count, oldest_create, oldest_update in rows
    ]


def _aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
