"""Operations: submit, get, list, cancel, delete; and the job's side of their lifecycle.

This is where a checked request becomes durable: inputs go to the blob store, the operation
row is written as `queued`, and only then is the job handed to the queue. Whatever the
process does next (crash, SIGKILL), the row and its inputs are enough to run it again.
"""

from __future__ import annotations

import base64
import functools
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, Protocol

from cinegen.core import metrics, rules
from cinegen.core.catalog import Catalog
from cinegen.core.errors import (
    CinegenError,
    InvalidArgument,
    NotFound,
    QuotaExceeded,
    RpcCode,
)
from cinegen.core.logs import bind_operation
from cinegen.core.operation import Operation, Sample, State
from cinegen.core.request import GenerateRequest
from cinegen.core.tracing import CONTEXT_KEY, carry, traced
from cinegen.service import prompt_policy, quotas
from cinegen.service.codec import request_from_json, request_to_json
from cinegen.service.files import FileService, is_valid_id, new_id, visible
from cinegen.service.inputs import InputService
from cinegen.service.usage import usage_row
from cinegen.service.workers import new_worker_id, owner_is_dead
from cinegen.settings import Settings
from cinegen.store.db import Database, utcnow

log = logging.getLogger("cinegen.service")

MAX_SEED = 2**32
CANCELLED_MESSAGE = "Operation cancelled."
_KEY_LOCKS = [threading.Lock() for _ in range(64)]  # one idempotency key at a time, per process
P = ParamSpec("P")


def _counts_end(
    method: Callable[Concatenate[OperationService, str, P], bool],
) -> Callable[Concatenate[OperationService, str, P], bool]:
    """A job's final write, counted in `cinegen_operations_finished` when it ended the
    operation (True); a lost lease ends nothing and counts nothing."""

    @functools.wraps(method)
    def counted(self: OperationService, op_id: str, *args: P.args, **kwargs: P.kwargs) -> bool:
        ended = method(self, op_id, *args, **kwargs)
        if ended:
            self._count_end(op_id)
        return ended

    return counted


class JobSink(Protocol):
    """Where a durable operation's id goes to be run: the job queue, seen from below."""

    def submit(self, op_id: str) -> None: ...


@dataclass(frozen=True)
class Page:
    operations: list[Operation]
    next_page_token: str | None


class OperationService:
    def __init__(
        self,
        db: Database,
        files: FileService,
        inputs: InputService,
        settings: Settings,
        jobs: JobSink,
        catalog: Catalog,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.files = files
        self.inputs = inputs
        self.settings = settings
        self.jobs = jobs
        # Who holds the leases this runtime takes (one runtime per process in a server): a
        # running operation is written only by its lease's owner (`claim`).
        self.worker_id = new_worker_id()

    # submit -----------------------------------------------------------------------------

    @traced("cinegen.service.submit")
    def submit(
        self,
        req: GenerateRequest,
        *,
        owner: str | None,
        api_version: str,
        resource_prefix: str = "",
        notes: dict[str, Any] | None = None,
    ) -> Operation:
        """Check, persist and queue; raise a CinegenError on refusal (nothing kept)."""
        req = rules.check(
            req,
            api_version=api_version,
            restricted_region=self.settings.restricted_region,
            catalog=self.catalog,
        )
        self._check_limits(owner, req)
        self.files.check_free_space()
        req, extension_file = self.inputs.check(req, owner)
        refused = prompt_policy.screen(req, self.settings)  # Veo's reason, or None
        seed = req.seed if req.seed is not None else secrets.randbelow(MAX_SEED)
        now = utcnow()
        op = Operation(
            id=new_id(),
            model=req.model,
            dialect=req.dialect,
            owner=owner,
            state=State.QUEUED if refused is None else State.SUCCEEDED,  # no worker may take it
            create_time=now,
            update_time=now,
            request={},
            seed=seed,
            resource_prefix=resource_prefix,
            notes=dict(notes or {}),
        )
        op.request = request_to_json(self.inputs.persist(op.id, req))
        op.request[CONTEXT_KEY] = carry(op.id)  # the request id and trace, for the job
        try:
            self.db.insert_operation(op)
        except Exception:
            self.inputs.delete(op.id)  # nothing is kept of a refused request
            raise
        if extension_file is not None:
            self.files.touch(extension_file)
        if refused is None:
            self.jobs.submit(op.id)
        else:
            op = self._end_refused(op, req.sample_count or 1, refused)
        metrics.operation_created(req.model, str(req.mode))
        return op

    def _end_refused(self, op: Operation, count: int, reason: str) -> Operation:
        """As Veo answers a prompt it will not generate: the operation is done at once, with
        no video, its samples counted as filtered and the reason (service/prompt_policy.py)."""
        if self.db.finish_operation(  # inserted as done: this writes its end and webhooks
            op.id,
            State.SUCCEEDED,
            expect=State.SUCCEEDED,
            progress=100.0,
            rai_filtered_count=count,
            rai_filtered_reasons=[reason],
        ):
            self._count_end(op.id)
        return self.db.get_operation(op.id) or op

    def _check_limits(self, owner: str | None, req: GenerateRequest) -> None:
        """The key's concurrent operations (queued + running) and its seconds of video today,
        checked before the inputs are read, so a refusal keeps nothing (an SDK retrying a
        429 makes no duplicates). Choice: two submits racing at a limit may both pass."""
        key = self.db.get_key(owner) if owner is not None else None
        limits = quotas.limits_of(key, self.settings)
        cap = limits.max_concurrent
        if cap > 0 and (unfinished := self.db.count_unfinished(owner)) >= cap:
            raise QuotaExceeded(
                f"This API key has {unfinished} operations queued or running, and its limit "
                f"of concurrent operations is {cap}. Wait for one to finish, or cancel one, "
                "and try again.",
                retry_after=quotas.CONCURRENT_RETRY_AFTER,
            )
        budget = limits.video_seconds_per_day
        if budget <= 0:
            return
        asked = quotas.requested_seconds(request_to_json(req))
        used = quotas.usage_today(self.db, owner).video_seconds
        if used + asked > budget:
            raise QuotaExceeded(
                f"This API key's limit of video seconds per day is {budget} (UTC days): "
                f"{used} s are asked for today and this request asks for {asked} s more. "
                "It frees at midnight UTC.",
                retry_after=quotas.seconds_to_midnight(),
            )

    def remix(
        self,
        op_id: str,
        owner: str | None,
        *,
        prompt: str,
        api_version: str,
        dialect: str = "videos",
        notes: dict[str, Any] | None = None,
    ) -> Operation:
        """A new operation from a stored one's request with a new prompt and the same seed.

        Persisted inputs are read back as bytes so the new operation owns copies of them.
        """
        source = self.get(op_id, owner)
        req = self.inputs.copied(request_from_json(source.request))
        req = req.with_(prompt=prompt, seed=source.seed, webhook=None, dialect=dialect)
        return self.submit(req, owner=owner, api_version=api_version, notes=notes)

    def submit_once(
        self,
        owner: str | None,
        key: str,
        fingerprint: str,
        submit: Callable[[], Operation],
        *,
        ttl_hours: float = 24.0,
    ) -> Operation:
        """`submit()` unless an earlier request with this idempotency key started an
        operation that still exists: then that one. The same key with another body
        (`fingerprint`) is refused. Across processes the first key stored wins."""
        with _KEY_LOCKS[hash((owner, key)) % len(_KEY_LOCKS)]:
            earlier = self._replay(owner, key, fingerprint, ttl_hours)
            if earlier is not None:
                return earlier
            op = submit()
            if self.db.insert_idempotency(owner, key, op.id, fingerprint):
                return op
            winner = self._replay(owner, key, fingerprint, ttl_hours)
            if winner is None:
                return op
            self.delete(op.id, owner)  # another process stored the key first: keep its video
            return winner

    def _replay(
        self, owner: str | None, key: str, fingerprint: str, ttl_hours: float
    ) -> Operation | None:
        row = self.db.get_idempotency(owner, key)
        if row is None:
            return None
        op_id, stored, created = row
        op = self.db.get_operation(op_id)
        if op is None or (utcnow() - created).total_seconds() > ttl_hours * 3600:
            self.db.delete_idempotency(owner, key)
            return None
        if stored != fingerprint:
            raise InvalidArgument(
                "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with."
            )
        return op

    # read -------------------------------------------------------------------------------

    def get(self, op_id: str, owner: str | None) -> Operation:
        op = self.db.get_operation(op_id) if is_valid_id(op_id) else None
        if op is None or not visible(op.owner, owner):
            raise NotFound(f"Operation {op_id} not found.")
        bind_operation(op.id)  # the request's log lines name the operation it reads
        return op

    def list_page(
        self, owner: str | None, *, model: str | None, page_size: int | None, page_token: str | None
    ) -> Page:
        """Newest first, in pages with an opaque token (the Gemini API's listing)."""
        size = min(max(page_size or 50, 1), 1000)
        after = _decode_page_token(page_token) if page_token else None
        ops = self.db.list_operations(owner, model=model, limit=size + 1, after=after)
        token = None
        if len(ops) > size:
            ops = ops[:size]
            token = _encode_page_token(ops[-1].create_time, ops[-1].id)
        return Page(ops, token)

    def list_after(
        self, owner: str | None, *, limit: int, after: Operation | None, ascending: bool
    ) -> list[Operation]:
        """Up to `limit` operations following `after` in (create_time, id) order."""
        cursor = (after.create_time, after.id) if after is not None else None
        return self.db.list_operations(owner, limit=limit, after=cursor, ascending=ascending)

    # change -----------------------------------------------------------------------------

    def cancel(self, op_id: str, owner: str | None) -> Operation:
        op = self.get(op_id, owner)
        if op.done:
            return op
        self.db.request_cancel(op.id)
        # A queued job never started: end it now. A running one stops at its next step.
        # A worker that claimed it meanwhile finds the flag right after its claim.
        if op.state == State.QUEUED and self.db.finish_operation(
            op.id,
            State.CANCELLED,
            expect=State.QUEUED,
            error_code=RpcCode.CANCELLED,
            error_message=CANCELLED_MESSAGE,
        ):
            self._count_end(op.id)
        return self.get(op_id, owner)

    def delete(self, op_id: str, owner: str | None) -> None:
        op = self.get(op_id, owner)
        # Blobs first: on a full disk the deletes free space before any row is written.
        self.files.discard_operation(op.id)
        self.inputs.delete(op.id)
        if not op.done:
            self.db.request_cancel(op.id)
        self.db.delete_operation(op.id)

    # the job's side ---------------------------------------------------------------------
    #
    # A worker claims an operation with a lease (`worker_id`, `lease_seconds`) and renews it
    # with every progress write. Every write of the job's side is guarded by the state it
    # expects and by the lease: one that matches nothing (False) means the operation ended,
    # was deleted, or was taken over after the lease expired, and the worker must stop and
    # write nothing more. Only expired leases are recovered (`recover`).

    @property
    def lease_seconds(self) -> float:
        return self.settings.lease_seconds

    def claim(self, op_id: str) -> Operation | None:
        """The operation, moved from queued to running under this worker's lease; None if
        another worker has it or it has ended."""
        return self.db.claim_operation(op_id, self.worker_id, self.lease_seconds)

    def next_queued(self) -> str | None:
        """The queued operation to run next, fair between keys: owners take turns, oldest
        first within each (`Database.fair_next_queued`). The caller claims it; when another
        worker claimed it first, the caller asks again."""
        return self.db.fair_next_queued()

    def cancel_requested(self, op_id: str) -> bool:
        return self.db.cancel_requested(op_id)

    def report_progress(self, op_id: str, percent: float) -> bool:
        """Write the progress and renew the lease; False if the lease is lost."""
        return self.db.renew_lease(
            op_id, self.worker_id, self.lease_seconds, progress=round(min(percent, 99.0), 1)
        )

    def renew(self, op_id: str) -> bool:
        """Renew the lease during long steps without progress (encode, store); False if lost."""
        return self.db.renew_lease(op_id, self.worker_id, self.lease_seconds)

    def _count_end(self, op_id: str) -> None:
        """One more operation finished, labelled as its row now says; a failed read costs
        the count only, never the write that ended it."""
        try:
            op = self.db.get_operation(op_id)
        except Exception:
            log.warning("operation %s: counting its end failed", op_id, exc_info=True)
            return
        if op is not None:
            metrics.operation_finished(op, str(request_from_json(op.request).mode))

    @_counts_end
    def finish_cancelled(self, op_id: str) -> bool:
        return self.db.finish_operation(
            op_id,
            State.CANCELLED,
            lease_owner=self.worker_id,
            error_code=RpcCode.CANCELLED,
            error_message=CANCELLED_MESSAGE,
        )

    @_counts_end
    def finish_failed(self, op_id: str, error: CinegenError) -> bool:
        return self.db.finish_operation(
            op_id,
            State.FAILED,
            lease_owner=self.worker_id,
            error_code=error.rpc_code,
            error_message=error.message,
        )

    @_counts_end
    def finish_succeeded(
        self,
        op_id: str,
        samples: list[Sample],
        notes: dict[str, Any],
        op: Operation | None = None,
        engine_seconds: float = 0.0,
        filtered: int = 0,
    ) -> bool:
        """False if the operation ended meanwhile (cancelled or deleted while encoding) or
        its lease was taken over: the caller discards its files. Given the operation as
        claimed (`op`), its usage row is written with its end (service/usage.py).
        `filtered` samples showed people under personGeneration `dont_allow`."""
        usage = usage_row(op, samples, engine_seconds, self.catalog) if op is not None else None
        reason = prompt_policy.filtered_reason(filtered, prompt_policy.PERSON_SUPPORT_CODE)
        return self.db.finish_operation(
            op_id,
            State.SUCCEEDED,
            lease_owner=self.worker_id,
            usage_row=usage,
            samples=samples,
            progress=100.0,
            notes=notes,
            rai_filtered_count=filtered,
            rai_filtered_reasons=[reason] if filtered else [],
        )

    def recover_expired(self, max_attempts: int) -> list[str]:
        """The ids of operations whose worker is gone (lease expired), queued again; one that
        has used its attempts is failed instead. A live lease is never touched, so this is
        safe while other processes work on the same database."""
        now = utcnow()
        ids = []
        dead = [owner for owner in self.db.lease_owners() if owner_is_dead(owner)]
        for op in self.db.expired_leases(now, dead_owners=dead):
            if op.attempts >= max_attempts:
                if self.db.fail_expired(
                    op.id,
                    now,
                    dead,
                    RpcCode.UNAVAILABLE,
                    f"The server stopped while generating this video, {op.attempts} "
                    "time(s); it was not retried again. Submit the request again.",
                ):
                    self._count_end(op.id)
                continue
            if self.db.requeue_expired(op.id, now, dead):
                log.info("operation %s lost its worker; running it again", op.id)
                ids.append(op.id)
        return ids

    def recover(self, max_attempts: int) -> list[str]:
        """At start-up: the ids of every operation to run, those whose worker is gone
        (`recover_expired`) and those still queued."""
        recovered = self.recover_expired(max_attempts)
        return recovered + [i for i in self.db.queued_operations() if i not in recovered]


def _encode_page_token(time: datetime, op_id: str) -> str:
    raw = f"{time.isoformat()}|{op_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        time, op_id = raw.split("|", 1)
        return datetime.fromisoformat(time), op_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("Invalid page token.") from exc
