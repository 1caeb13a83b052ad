"""The in-process job queue: worker threads that call `run_job`, plus restart recovery.

Recovery is what makes SIGKILL safe: at start-up every operation still `queued` is queued
again, and every one left `running` by a dead process runs again, or fails with a clear error
once it has used its attempts.
"""

from __future__ import annotations

import logging
import queue
import threading

from cinegen.core.errors import RpcCode
from cinegen.core.operation import State
from cinegen.jobs.worker import JobContext, run_job

log = logging.getLogger("cinegen.queue")


class InProcessQueue:
    def __init__(self, ctx: JobContext, workers: int, max_attempts: int) -> None:
        self.ctx = ctx
        self.workers = max(workers, 0)  # 0: an API-only node; jobs wait in the database
        self.max_attempts = max_attempts
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def submit(self, op_id: str) -> None:
        self._queue.put(op_id)

    def start(self) -> None:
        if self.workers == 0:
            return
        self.recover()
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._loop, name=f"cinegen-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def recover(self) -> None:
        db = self.ctx.service.db
        for op in db.unfinished_operations():
            if op.state == State.RUNNING:
                if op.attempts >= self.max_attempts:
                    db.finish_operation(
                        op.id,
                        State.FAILED,
                        error_code=RpcCode.UNAVAILABLE,
                        error_message=(
                            f"The server stopped while generating this video, {op.attempts} "
                            "time(s); it was not retried again. Submit the request again."
                        ),
                    )
                    continue
                log.info("operation %s was interrupted; running it again", op.id)
                db.requeue(op.id)
            self.submit(op.id)

    def _loop(self) -> None:
        while True:
            op_id = self._queue.get()
            if op_id is None:
                return
            try:
                run_job(op_id, self.ctx)
            except Exception:  # run_job records failures itself; this is the last guard
                log.exception("job %s escaped its handler", op_id)
