"""Jobs over a broker (Celery, Redis): the queue of API nodes and the loop of `cinegen worker`.

With `CINEGEN_BROKER_URL` set, an API node runs no jobs: `CeleryQueue.submit` sends one Celery
task per operation to the queue of its model, `cinegen.<model id>` (e.g.
`cinegen.veo-3.1-generate-preview`), and `cinegen worker` processes consume the queues of the
models they serve and call the same `run_job` as the in-process queue. The message carries the
operation id only (JSON, no pickle); there is no result backend, since the database is the
truth: `run_job` claims the operation atomically, so a message delivered twice runs its job
once, and a message for a cancelled or finished operation is acknowledged and does nothing.

Settings fit long GPU jobs: a message is acknowledged after its job (late ack), rejected back
to the queue when its worker process is lost, one message reserved per worker thread (prefetch
1), and a visibility timeout longer than the longest job (`job_timeout_seconds` plus a margin),
so Redis does not hand a running job's message to a second worker. A worker that dies is not
left to the visibility timeout: its lease expires (or its process is seen gone) and the lease
watchdog of a live worker queues the operation again through the broker (`WorkerLoops`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cinegen.core import metrics
from cinegen.jobs import reconcile
from cinegen.jobs.worker import JobContext, run_job
from cinegen.settings import Settings
from cinegen.store.db import Database

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("cinegen.celery")

QUEUE_PREFIX = "cinegen."
TASK_NAME = "cinegen.run_job"
# Seconds past the longest job before Redis hands an unacknowledged message out again.
VISIBILITY_MARGIN = 600.0
NO_TIMEOUT_VISIBILITY = 24 * 3600.0  # job_timeout_seconds = 0: no limit, one day then
BROKER_TIMEOUT = 5.0  # seconds to connect or to answer, so a send never hangs a request
REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://")
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def queue_name(model: str) -> str:
    """The broker queue of a model's jobs."""
    return f"{QUEUE_PREFIX}{model}"


def visibility_timeout(settings: Settings) -> float:
    """Longer than any job may run, so that a running job's message stays with its worker."""
    longest = settings.job_timeout_seconds or NO_TIMEOUT_VISIBILITY
    return longest + VISIBILITY_MARGIN


def celery_app(settings: Settings) -> Celery:
    """The Celery app of API nodes and workers alike (they must agree on all of it). Celery
    is imported here, so that a server without a broker never loads it."""
    from celery import Celery

    app = Celery("cinegen", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue_name("default"),
        task_create_missing_queues=True,
        task_publish_retry_policy=PUBLISH_RETRY,
        broker_transport_options={
            "visibility_timeout": visibility_timeout(settings),
            "socket_timeout": BROKER_TIMEOUT,
            "socket_connect_timeout": BROKER_TIMEOUT,
        },
        broker_connection_timeout=BROKER_TIMEOUT,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for the broker to come back
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_disable_rate_limits=True,
        enable_utc=True,
    )
    return app


class CeleryQueue:
    """The job queue of a process that sends jobs to the broker (an API node, and a worker
    for what its watchdog and reconciler queue again). Runs nothing itself."""

    def __init__(self, settings: Settings, db: Database, app: Celery | None = None) -> None:
        self.settings = settings
        self.db = db
        self.app = app or celery_app(settings)

    def submit(self, op_id: str) -> None:
        """Send the operation to its model's queue. A failed send is logged, not raised: the
        operation is in the database already, and the reconciler sends it again later."""
        try:
            op = self.db.get_operation(op_id)
            if op is not None:
                self.send(op_id, op.model)
        except Exception:
            log.warning(
                "operation %s: the broker did not take it; the reconciler sends it again",
                op_id,
                exc_info=True,
            )

    def send(self, op_id: str, model: str) -> None:
        """One task message for `op_id` on `cinegen.<model>`; raises if the broker fails. The
        task id starts with the operation id, so a worker's log names the operation."""
        task_id = f"{op_id}.{uuid.uuid4().hex[:8]}"  # each send its own: a resend is new
        self.app.send_task(
            TASK_NAME, args=[op_id], queue=queue_name(model), task_id=task_id, ignore_result=True
        )

    def waiting(self, models: Iterable[str]) -> set[str] | None:
        """The ids of the operations with a message waiting in the queues of `models`; None
        where the broker cannot be read so (not Redis). Messages delivered and not yet
        acknowledged are left out on purpose: one of them may belong to a worker killed
        mid-job, and stay there until the visibility timeout."""
        if not self.settings.broker_url.startswith(REDIS_SCHEMES):
            return None
        with self.app.connection_for_read() as conn:
            client: Any = conn.default_channel.client
            raw = [item for model in models for item in client.lrange(queue_name(model), 0, -1)]
        return {op_id for item in raw if (op_id := _message_op_id(item))}

    def start(self, ctx: JobContext) -> None:
        """Nothing: an API node runs no jobs; `cinegen worker` consumes them."""

    def stop(self, timeout: float = 5.0) -> None:
        self.app.close()


def _message_op_id(raw: bytes | str) -> str | None:
    """The operation id of a kombu Redis message (its task id is `<op id>.<suffix>`)."""
    try:
        task_id = json.loads(raw)["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return task_id.split(".", 1)[0] if isinstance(task_id, str) else None


def broker_queue(settings: Settings, db: Database) -> CeleryQueue | None:
    """The broker's queue when `broker_url` is set (the process then runs no worker threads,
    whatever CINEGEN_WORKERS says); None: the caller uses its in-process queue."""
    return CeleryQueue(settings, db) if settings.broker_url else None


class WorkerLoops:
    """What a worker runs beside its Celery consumer, in one thread: every poll interval the
    lease watchdog (operations whose worker died or hung are queued again through the broker,
    or failed once they used `max_attempts`), and every `reconcile_grace_seconds / 2` the
    reconciler (jobs/reconcile.py)."""

    def __init__(self, ctx: JobContext, queue: CeleryQueue) -> None:
        self.ctx = ctx
        self.queue = queue
        self.settings = queue.settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cinegen-watchdog", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def watchdog_pass(self) -> list[str]:
        """Expired leases queued again and sent to the broker; their ids."""
        requeued = self.ctx.service.recover_expired(self.settings.max_attempts)
        for op_id in requeued:
            self.queue.submit(op_id)
        return requeued

    def reconcile_pass(self) -> list[str]:
        return reconcile.reconcile(
            self.ctx.service.db,
            self.settings.reconcile_grace_seconds,
            self.queue.send,
            waiting=self.queue.waiting,
        )

    def _run(self) -> None:
        interval = max(self.settings.poll_interval_seconds, 0.05)
        every = max(self.settings.reconcile_grace_seconds / 2, interval)
        next_reconcile = time.monotonic()  # a first pass at start: what a lost broker dropped
        while True:
            self._guard("the lease watchdog", self.watchdog_pass)
            if time.monotonic() >= next_reconcile:
                self._guard("the reconciler", self.reconcile_pass)
                next_reconcile = time.monotonic() + every
            if self._stop.wait(interval):
                return

    @staticmethod
    def _guard(name: str, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception:  # a database or broker outage: the next pass tries again
            log.warning("%s failed; trying again", name, exc_info=True)


def register_task(app: Celery, ctx: JobContext) -> None:
    """The task a worker runs: `run_job` on the operation id (it claims first; a lost claim,
    a cancelled or a finished operation runs nothing). It never raises, so the message is
    acknowledged once the job ended, whatever the end."""

    @app.task(name=TASK_NAME, ignore_result=True, acks_late=True)
    def run(op_id: str) -> None:
        try:
            with metrics.JOBS_IN_FLIGHT.track_inprogress():
                run_job(op_id, ctx)
        except Exception:  # run_job records failures itself; this is the last guard
            log.exception("job %s escaped its handler", op_id)


def run_worker(
    settings: Settings,
    ctx: JobContext,
    queue: CeleryQueue,
    models: Sequence[str],
    concurrency: int = 1,
) -> None:
    """Consume the queues of `models` until stopped (SIGTERM / SIGINT: a warm shutdown that
    lets running jobs end; SIGQUIT: at once, their leases expire and others take them)."""
    register_task(queue.app, ctx)
    loops = WorkerLoops(ctx, queue)
    loops.start()
    options: dict[str, Any] = {
        "queues": [queue_name(model) for model in models],
        "concurrency": max(concurrency, 1),
        "pool": "solo" if concurrency <= 1 else "threads",
        "hostname": f"cinegen-{os.getpid()}@{socket.gethostname()}",
        "without_mingle": True,
        "without_gossip": True,
        "without_heartbeat": True,
        "quiet": True,
        "loglevel": settings.log_level.upper(),
    }
    from celery.signals import worker_ready

    def ready(**_: object) -> None:
        log.info("cinegen worker: ready, consuming %s", ", ".join(options["queues"]))

    worker_ready.connect(ready, weak=False)
    try:
        queue.app.Worker(**options).start()
    finally:
        loops.stop()
