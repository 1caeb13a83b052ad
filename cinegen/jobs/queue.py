"""The job queue: the `JobQueue` protocol and its in-process implementation (worker threads
that call `run_job`), plus restart recovery.

Recovery is what makes SIGKILL safe: a running operation holds a lease that its worker renews
(jobs/worker.py); once the lease has expired (its worker died) the operation runs again, or
fails with a clear error once it has used its attempts (`OperationService.recover_expired`),
at start-up and, while a process with workers runs, every poll interval. A live lease is never
touched, so several processes can share one database.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from cinegen.jobs.worker import JobContext, run_job

log = logging.getLogger("cinegen.queue")


class JobQueue(Protocol):
    """What the runtime needs of a queue: take ids, run them with a context, stop."""

    def submit(self, op_id: str) -> None: ...
    def start(self, ctx: JobContext) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...


class InProcessQueue:
    """Worker threads of this process. Ids submitted before `start` wait in the queue.

    A worker whose queue is empty takes the oldest queued operation from the database, so a
    job submitted by another process (an API-only node, `CINEGEN_WORKERS=0`) runs here too;
    and a watchdog queues again every operation whose lease expired (its worker died), while
    this process runs. Claims are atomic: an id delivered twice runs once.
    """

    def __init__(self, workers: int, max_attempts: int, poll_interval: float = 1.0) -> None:
        self.workers = max(workers, 0)  # 0: an API-only node; jobs wait in the database
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def submit(self, op_id: str) -> None:
        self._queue.put(op_id)

    def start(self, ctx: JobContext) -> None:
        if self.workers == 0:
            return
        self._stop.clear()
        for op_id in ctx.service.recover(self.max_attempts):
            self.submit(op_id)
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._loop, args=(ctx,), name=f"cinegen-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        watchdog = threading.Thread(
            target=self._watchdog, args=(ctx,), name="cinegen-lease-watchdog", daemon=True
        )
        watchdog.start()
        self._threads.append(watchdog)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _next(self, ctx: JobContext) -> str | None:
        """The next id to run: from this queue, else the database's oldest queued one after
        a poll interval; None when stopping."""
        while not self._stop.is_set():
            try:
                return self._queue.get(timeout=self.poll_interval)
            except queue.Empty:
                pass
            try:
                op_id = ctx.service.next_queued()
            except Exception:
                log.exception("polling the database for queued jobs failed")
                continue
            if op_id is not None:
                return op_id
        return None

    def _loop(self, ctx: JobContext) -> None:
        while True:
            op_id = self._next(ctx)
            if op_id is None:
                return
            try:
                run_job(op_id, ctx)
            except Exception:  # run_job records failures itself; this is the last guard
                log.exception("job %s escaped its handler", op_id)

    def _watchdog(self, ctx: JobContext) -> None:
        """Every poll interval: operations whose lease expired are queued again (or failed
        once they have used their attempts) and handed to this process's workers."""
        while not self._stop.wait(self.poll_interval):
            try:
                for op_id in ctx.service.recover_expired(self.max_attempts):
                    self.submit(op_id)
            except Exception:
                log.exception("recovering expired leases failed")
