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
import time
from typing import Protocol

from cinegen.core import metrics
from cinegen.jobs.worker import JobContext, run_job

log = logging.getLogger("cinegen.queue")


class JobQueue(Protocol):
    """What the runtime needs of a queue: take ids, run them with a context, stop."""

    def submit(self, op_id: str) -> None: ...
    def start(self, ctx: JobContext) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...


class InProcessQueue:
    """Worker threads of this process.

    Which job runs next is the database's choice, not the order of `submit`: a worker asks
    for the queued operation whose turn comes first (`OperationService.next_queued`: owners
    take turns, so one key's 40 jobs do not hold back another key's one) and claims it; a
    claim that loses a race to another worker or process asks again. A submitted id is only
    a wake-up call, and a worker with none asks the database every poll interval, so a job
    submitted by another process (an API-only node, `CINEGEN_WORKERS=0`) runs here too.
    Claims are atomic: an id delivered twice runs once.

    A watchdog queues again every operation whose lease expired (its worker died), while
    this process runs, and every `checkpoint_interval` seconds keeps SQLite's WAL small
    (`Database.checkpoint`).
    """

    def __init__(
        self,
        workers: int,
        max_attempts: int,
        poll_interval: float = 1.0,
        checkpoint_interval: float = 60.0,
    ) -> None:
        self.workers = max(workers, 0)  # 0: an API-only node; jobs wait in the database
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.checkpoint_interval = checkpoint_interval
        # Wake-up calls: one per submitted id (None: stop). Ids submitted before `start`
        # are in the database already; their calls just wake the first workers.
        self._wakeups: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def submit(self, op_id: str) -> None:
        if self.workers:  # an API-only node keeps no calls: its jobs wait in the database
            self._wakeups.put(op_id)

    def start(self, ctx: JobContext) -> None:
        if self.workers == 0:
            return
        self._stop.clear()
        for op_id in ctx.service.recover(self.max_attempts):
            self.submit(op_id)
        for index in range(self.workers):
            thread = threading.Thread(
                target=metrics.counting_alive(self._loop),
                args=(ctx,),
                name=f"cinegen-worker-{index}",
                daemon=True,
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
            self._wakeups.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self, ctx: JobContext) -> None:
        """Run the fair next job while there is one; else sleep until a wake-up call or a
        poll interval. A worker that finds a job without being woken takes one wake-up call
        (that job's), so that calls do not pile up while every worker is busy."""
        woken = False
        while not self._stop.is_set():
            op_id = self._next_queued(ctx)
            if op_id is None:
                woken = self._sleep()
                continue
            if not woken:
                self._take_wakeup()
            woken = False
            try:
                with metrics.JOBS_IN_FLIGHT.track_inprogress():
                    run_job(op_id, ctx)  # claims it first; a lost claim runs nothing
            except Exception:  # run_job records failures itself; this is the last guard
                log.exception("job %s escaped its handler", op_id)
                self._stop.wait(self.poll_interval)  # no busy loop on a failing database

    def _next_queued(self, ctx: JobContext) -> str | None:
        try:
            return ctx.service.next_queued()
        except Exception:
            log.exception("asking the database for queued jobs failed")
            return None

    def _sleep(self) -> bool:
        """Until a wake-up call (True) or a poll interval has passed (False)."""
        try:
            return self._wakeups.get(timeout=self.poll_interval) is not None
        except queue.Empty:
            return False

    def _take_wakeup(self) -> None:
        try:
            call = self._wakeups.get_nowait()
        except queue.Empty:
            return
        if call is None:  # a stop call is for a sleeping worker: leave it there
            self._wakeups.put(None)

    def _watchdog(self, ctx: JobContext) -> None:
        """Every poll interval: operations whose lease expired are queued again (or failed
        once they have used their attempts) and this process's workers woken for them.
        Every `checkpoint_interval`: SQLite's WAL is truncated."""
        last_checkpoint = time.monotonic()
        while not self._stop.wait(self.poll_interval):
            try:
                for op_id in ctx.service.recover_expired(self.max_attempts):
                    self.submit(op_id)
            except Exception:
                log.exception("recovering expired leases failed")
            if time.monotonic() - last_checkpoint >= self.checkpoint_interval:
                last_checkpoint = time.monotonic()
                try:
                    ctx.service.db.checkpoint()
                except Exception:
                    log.exception("checkpointing the database's WAL failed")
