"""The job queue: the `JobQueue` protocol and its in-process implementation (worker threads
that call `run_job`), plus restart recovery.

Recovery is what makes SIGKILL safe: at start-up every operation still `queued` is queued
again, and every one left `running` by a dead process runs again, or fails with a clear error
once it has used its attempts (`OperationService.recover`).
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
    """Worker threads of this process. Ids submitted before `start` wait in the queue."""

    def __init__(self, workers: int, max_attempts: int) -> None:
        self.workers = max(workers, 0)  # 0: an API-only node; jobs wait in the database
        self.max_attempts = max_attempts
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def submit(self, op_id: str) -> None:
        self._queue.put(op_id)

    def start(self, ctx: JobContext) -> None:
        if self.workers == 0:
            return
        for op_id in ctx.service.recover(self.max_attempts):
            self.submit(op_id)
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._loop, args=(ctx,), name=f"cinegen-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self, ctx: JobContext) -> None:
        while True:
            op_id = self._queue.get()
            if op_id is None:
                return
            try:
                run_job(op_id, ctx)
            except Exception:  # run_job records failures itself; this is the last guard
                log.exception("job %s escaped its handler", op_id)
