"""Operations, files and API keys in SQL (SQLite by default, PostgreSQL by URL).

The schema lives in Alembic migrations (store/migrations); `Database.migrate()` brings any
database to head at start-up. Rows map to the dataclasses of `core.operation`.
"""

from __future__ import annotations

import threading
import uuid
from collections import namedtuple
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    bindparam,
    case,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from cinegen.core.operation import Operation, Sample, State

metadata = MetaData()

operations = Table(
    "operations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("model", String(128), nullable=False),
    Column("dialect", String(16), nullable=False),
    Column("owner", String(64), index=True),
    Column("state", String(16), nullable=False, index=True),
    Column("progress", Float, nullable=False, default=0.0),
    Column("seed", BigInteger, nullable=False, default=0),
    Column("request", JSON, nullable=False),
    Column("samples", JSON, nullable=False),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("rai_filtered_count", Integer, nullable=False, default=0),
    Column("rai_filtered_reasons", JSON, nullable=False),
    Column("notes", JSON, nullable=False),
    Column("resource_prefix", String(256), nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("create_time", DateTime(timezone=True), nullable=False, index=True),
    Column("update_time", DateTime(timezone=True), nullable=False),
    # The lease of a running operation: the worker that runs it, and until when. Only that
    # worker writes the row while the lease lasts; an expired lease may be taken over.
    Column("lease_owner", String(64)),
    Column("lease_expires", DateTime(timezone=True)),
)
Index("ix_operations_owner_create_time", operations.c.owner, operations.c.create_time)

files = Table(
    "files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("operation_id", String(64), nullable=False, index=True),
    Column("owner", String(64), index=True),
    Column("blob_key", String(512), nullable=False),
    Column("mime_type", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("expire_time", DateTime(timezone=True), nullable=False, index=True),
    Column("deleted", Boolean, nullable=False, default=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("name", String(128), nullable=False, default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    # Migration 0006: NULL limits are the server's defaults (settings), 0 is no limit.
    Column("admin", Boolean, nullable=False, default=False),
    Column("expire_time", DateTime(timezone=True)),
    Column("revoke_time", DateTime(timezone=True)),
    Column("max_concurrent", Integer),
    Column("video_seconds_per_day", Integer),
    Column("requests_per_minute", Integer),
)

# Requests per key, kind (`requests`, `polls`) and minute, shared by every process (0006).
rate_counts = Table(
    "rate_counts",
    metadata,
    Column("owner", String(64), primary_key=True),  # the key id
    Column("kind", String(16), primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # unix time // 60
    Column("count", Integer, nullable=False),
)


video_idempotency = Table(
    "video_idempotency",
    metadata,
    Column("owner", String(64), primary_key=True),  # "" for the anonymous owner
    Column("key", String(255), primary_key=True),
    Column("operation_id", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
)

# The sha256 of every MP4 this server stored as an output: what "made by this server" means
# for an extension input sent as bytes (tags in the file can be forged; a hash cannot).
made_videos = Table(
    "made_videos",
    metadata,
    Column("sha256", String(64), primary_key=True),  # lower-case hex
    Column("file_id", String(64), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
)

# One row per succeeded operation (migration 0007): what usage metering reports. Written in
# the transaction that ends the operation (`finish_operation`), kept after it is deleted.
usage = Table(
    "usage",
    metadata,
    Column("operation_id", String(64), primary_key=True),
    Column("owner", String(64)),  # the key id; NULL for the anonymous owner
    Column("model", String(128), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("resolution", String(16), nullable=False),
    Column("audio", Boolean, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("engine_seconds", Float, nullable=False),
    Column("veo_price_per_second", Float),  # NULL: Veo has no price for it
    Column("veo_price_usd", Float),
    Column("finish_time", DateTime(timezone=True), nullable=False, index=True),
    Column("day", String(10), nullable=False),  # finish_time's UTC date, YYYY-MM-DD
)
Index("ix_usage_owner_finish_time", usage.c.owner, usage.c.finish_time)
# What usage can be grouped by, and the column of each.
USAGE_GROUPS = {
    "key": usage.c.owner,
    "model": usage.c.model,
    "mode": usage.c.mode,
    "resolution": usage.c.resolution,
    "day": usage.c.day,
}

# Hot-path statements, built once: constructing a select costs more than running it on SQLite.
_GET_OPERATION = select(operations).where(operations.c.id == bindparam("op_id"))
_GET_FILE = select(files).where(files.c.id == bindparam("file_id"))
_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.create_time,
    api_keys.c.admin,
    api_keys.c.expire_time,
    api_keys.c.revoke_time,
    api_keys.c.max_concurrent,
    api_keys.c.video_seconds_per_day,
    api_keys.c.requests_per_minute,
)
_KEY_BY_HASH = select(*_KEY_COLUMNS).where(api_keys.c.key_hash == bindparam("key_hash"))
_CANCEL_REQUESTED = select(operations.c.cancel_requested).where(
    operations.c.id == bindparam("op_id")
)


# The key of the PostgreSQL advisory lock that `Database.migrate()` holds: N nodes starting
# together on one fresh database migrate it once, one after the other ("cine" in ASCII).
MIGRATION_LOCK_KEY = 0x63696E65
# Seconds a PostgreSQL connection attempt may take: a database that does not answer makes a
# request fail fast (503) instead of hanging a worker thread.
CONNECT_TIMEOUT_S = 5


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (down, restarting, cut,
    SQLite locked): a passing fault, answered 503 UNAVAILABLE. By type, never by message."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FileRecord:
    id: str
    operation_id: str
    owner: str | None
    blob_key: str
    mime_type: str
    size_bytes: int
    create_time: datetime
    expire_time: datetime
    deleted: bool


def _operation_from_row(row: Any) -> Operation:
    return Operation(
        id=row.id,
        model=row.model,
        dialect=row.dialect,
        owner=row.owner,
        state=State(row.state),
        create_time=_aware(row.create_time),
        update_time=_aware(row.update_time),
        request=row.request,
        progress=row.progress,
        seed=row.seed,
        samples=[Sample(**s) for s in row.samples],
        error_code=row.error_code,
        error_message=row.error_message,
        rai_filtered_count=row.rai_filtered_count,
        rai_filtered_reasons=list(row.rai_filtered_reasons),
        notes=dict(row.notes),
        resource_prefix=row.resource_prefix,
        attempts=row.attempts,
    )


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored (never the key itself). Limits: None is the server's default,
    0 none at all."""

    id: str
    name: str
    create_time: datetime
    admin: bool = False
    expire_time: datetime | None = None
    revoke_time: datetime | None = None
    max_concurrent: int | None = None
    video_seconds_per_day: int | None = None
    requests_per_minute: int | None = None


# What `update_key` may change.
KEY_FIELDS = frozenset(
    {
        "name",
        "admin",
        "expire_time",
        "revoke_time",
        "max_concurrent",
        "video_seconds_per_day",
        "requests_per_minute",
    }
)


def _key_from_row(row: Any) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        create_time=_aware(row.create_time),
        admin=bool(row.admin),
        expire_time=_aware(row.expire_time) if row.expire_time is not None else None,
        revoke_time=_aware(row.revoke_time) if row.revoke_time is not None else None,
        max_concurrent=row.max_concurrent,
        video_seconds_per_day=row.video_seconds_per_day,
        requests_per_minute=row.requests_per_minute,
    )


def _file_from_row(row: Any) -> FileRecord:
    return FileRecord(
        id=row.id,
        operation_id=row.operation_id,
        owner=row.owner,
        blob_key=row.blob_key,
        mime_type=row.mime_type,
        size_bytes=row.size_bytes,
        create_time=_aware(row.create_time),
        expire_time=_aware(row.expire_time),
        deleted=row.deleted,
    )


# What SQLite leaves of its WAL file after a checkpoint reset it; without a limit the file
# stays at the largest size it ever reached (a burst of writes, a long read).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


def _served_before(queued: Any, same_owner: Any) -> Any:
    """The last change of the owner's operation just before the head of its queue: one
    index lookup on (owner, create_time)."""
    o = operations.c
    return (
        select(o.update_time)
        .where(same_owner, o.create_time < queued.c.create_time)
        .order_by(o.create_time.desc())
        .limit(1)
        .scalar_subquery()
    )


def _fair_next_select() -> Select:
    """The queued operation to run next: owners take turns, oldest first within each.

    Only the head of each owner's queue (rank 1 of ROW_NUMBER() OVER (PARTITION BY owner
    ORDER BY create_time, id)) can come next. Of the heads, the owner with the fewest running
    operations goes first; then the one served longest ago (the last change of its operation
    just before the head: within an owner jobs start oldest first, so that is the one it was
    served last; never served goes first); then the oldest. Without the middle key a single
    worker would be FIFO again, as the head of a long queue is always older than another
    key's new job. The anonymous owner (NULL) is one owner. Standard SQL (a window function,
    correlated subqueries), as SQLite and PostgreSQL both run it; the subqueries run once
    per owner with queued jobs, on the index of (owner, create_time)."""
    o = operations.c
    rank = func.row_number().over(partition_by=o.owner, order_by=(o.create_time, o.id))
    queued = (
        select(o.id, o.owner, o.create_time, rank.label("queue_rank"))
        .where(o.state == State.QUEUED.value)
        .subquery("queued")
    )
    # Equality, not IS NOT DISTINCT FROM, which PostgreSQL cannot look up in an index.
    running = (
        select(func.count())
        .where(
            (o.owner == queued.c.owner) | (o.owner.is_(None) & queued.c.owner.is_(None)),
            o.state == State.RUNNING.value,
        )
        .scalar_subquery()
    )
    last_served = case(
        (queued.c.owner.is_(None), _served_before(queued, o.owner.is_(None))),
        else_=_served_before(queued, o.owner == queued.c.owner),
    )
    return (
        select(queued.c.id)
        .where(queued.c.queue_rank == 1)
        .order_by(running, last_served.asc().nulls_first(), queued.c.create_time, queued.c.id)
        .limit(1)
    )


_FAIR_NEXT = _fair_next_select()


class PreparedRead:
    """A fixed SELECT run straight on the DB-API connection, with SQLAlchemy's own column
    conversions. On the poll path SQLAlchemy's execution machinery costs several times the
    SQLite query itself; here the SQL text, the parameter order and the converters are worked
    out once per dialect, and a read is one driver call plus the conversions."""

    def __init__(self, statement: Select, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.order = compiled.positiontup if compiled.positional else None
        self.columns = list(statement.selected_columns)
        self.dialect = dialect
        self.row_type = namedtuple("Row", [c.name for c in self.columns])  # type: ignore[misc]
        self.converters: list[Any] | None = None

    def parameters(self, values: dict[str, Any]) -> Any:
        return [values[name] for name in self.order] if self.order is not None else values

    def _converters(self, description: Any) -> list[Any]:
        """Worked out from the first result's column types (the cursor's type codes, which
        PostgreSQL's numeric converters need; SQLite has none)."""
        if self.converters is None:
            self.converters = [
                self.dialect.type_descriptor(c.type).result_processor(self.dialect, d[1])
                for c, d in zip(self.columns, description, strict=True)
            ]
        return self.converters

    def row(self, raw: Any, description: Any) -> Any:
        converters = self._converters(description)
        return self.row_type(
            *(convert(v) if convert else v for convert, v in zip(converters, raw, strict=True))
        )


class FinishEvents(Protocol):
    """Builds the webhook event rows of an operation that ended (service/deliveries.py)."""

    def rows(self, op: Operation, webhooks: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
        """`webhook_events` rows; `webhooks`: the owner's enabled `WebhookRecord`s."""
        ...

    def enqueued(self) -> None:
        """Called after the rows were committed."""
        ...


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, connect_args={"check_same_thread": False}, pool_size=64, max_overflow=64
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self._write_lock: AbstractContextManager = threading.Lock()
        else:
            # pre_ping: a pooled connection that died in an outage is replaced on checkout.
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=16,
                max_overflow=16,
                connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
            )
            self._write_lock = nullcontext()
        # Bumped on each lost connection: the connections threads keep for reads (`_read`,
        # `_fetch_one`) are never checked out again, so pre_ping cannot renew them; one older
        # than the latest loss is dropped before its next use.
        self._epoch = 0
        self._skip_locked = self.engine.dialect.name == "postgresql"
        dialect = self.engine.dialect
        self._get_operation = PreparedRead(_GET_OPERATION, dialect)
        self._get_file = PreparedRead(_GET_FILE, dialect)
        self._key_by_hash = PreparedRead(_KEY_BY_HASH, dialect)
        self._cancel_requested = PreparedRead(_CANCEL_REQUESTED, dialect)
        # Webhook events of operations that end (service/deliveries.py), written with the end.
        self.finish_events: FinishEvents | None = None

    def _lost(self, exc: BaseException) -> None:
        """A connection was lost: every thread's kept read connection is renewed."""
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            self._epoch += 1

    def _raw_connection(self) -> tuple[Any, bool]:
        """This thread's driver connection, and whether it was kept from an earlier read."""
        raw = getattr(self._local, "raw", None)
        if raw is not None and self._local.raw_epoch == self._epoch:
            return raw, True
        if raw is not None:
            raw.invalidate()
        self._local.raw, self._local.raw_epoch = self.engine.raw_connection(), self._epoch
        return self._local.raw, False

    def _fetch_one(self, query: PreparedRead, **values: Any) -> Any:
        """One row (or None) of a hot-path read, on this thread's own driver connection. The
        rollback ends any read transaction (PostgreSQL opens one; SQLite does not), so the
        next read sees the latest commit. A failed connection is dropped and made anew; a
        kept one that the database dropped (it restarted) is tried once more on a new one.
        Driver errors are raised as SQLAlchemy's, as every other query raises them."""
        while True:
            raw: Any = None
            driver: Any = None
            kept = False
            try:
                raw, kept = self._raw_connection()  # a pool checkout raises the driver's error
                driver = raw.driver_connection
                cursor = driver.cursor()
                cursor.execute(query.sql, query.parameters(values))
                row = cursor.fetchone()
                description = cursor.description
                cursor.close()
                driver.rollback()
            except Exception as exc:
                self._local.raw = None
                if raw is not None:
                    raw.invalidate()
                error = self._wrapped(exc, query.sql, values, driver)
                if error is exc:
                    raise
                self._lost(error)
                if kept and is_unavailable(error):
                    continue
                raise error from exc
            return query.row(row, description) if row is not None else None

    def _wrapped(self, exc: Exception, sql: str, values: dict[str, Any], driver: Any) -> Exception:
        """A driver (DB-API) error as SQLAlchemy's exception of the same kind; else `exc`."""
        dialect = self.engine.dialect
        base = dialect.loaded_dbapi.Error
        if not isinstance(exc, base):
            return exc
        return DBAPIError.instance(
            sql,
            values,
            exc,
            base,
            connection_invalidated=dialect.is_disconnect(exc, driver, None),
            dialect=dialect,
        )

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read on this thread's own connection: no pool checkout per poll. The rollback
        ends the read transaction, so the next read sees the latest commit."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and (
            conn.closed or conn.invalidated or self._local.epoch != self._epoch
        ):
            self._drop(conn)
            conn = None
        if conn is None:
            conn = self._local.conn = self.engine.connect()
            self._local.epoch = self._epoch
        try:
            yield conn
        except DBAPIError as exc:
            self._lost(exc)
            raise
        finally:
            self._end_read(conn)

    def _end_read(self, conn: Connection) -> None:
        """Roll back a read; a connection that cannot is dropped (the read itself is done)."""
        try:
            conn.rollback()
        except DBAPIError as exc:
            self._lost(exc)
            self._drop(conn)

    def _drop(self, conn: Connection) -> None:
        """Give up this thread's read connection; the next read makes a new one."""
        self._local.conn = None
        if conn.closed:
            return
        try:
            conn.invalidate()
            conn.close()
        except DBAPIError:
            pass

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction. SQLite allows one writer at a time and its busy handler
        sleeps with back-off, which makes long tails under concurrent writes; queueing the
        writers of this process on a lock instead keeps every write short."""
        try:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            self._lost(exc)
            raise

    def checkpoint(self) -> bool:
        """Copy SQLite's WAL into the database and truncate it to nothing, so that it does
        not grow while readers keep SQLite's own (passive) checkpoints from finishing. True
        if the WAL was emptied; False if a reader still needed it (the next call retries)
        and on PostgreSQL, which has no such file to keep small."""
        if self.engine.dialect.name != "sqlite":
            return False
        with self._write_lock, self.engine.connect() as conn:
            busy, _frames, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            conn.commit()
        return busy == 0

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def migrate(self) -> str | None:
        """Bring the schema to head; returns the revision it found (None: an empty database).
        On PostgreSQL under an advisory lock held until the commit (DDL is transactional
        there): of N nodes starting together one migrates, the others wait, then find the
        schema at head and do nothing."""
        from alembic.runtime.migration import MigrationContext

        config = self._alembic_config()
        with self._write() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            found = MigrationContext.configure(connection).get_current_revision()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return found

    def revision(self) -> str | None:
        """The schema's Alembic revision (None: not migrated at all)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision of the migrations this code ships."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    # operations -------------------------------------------------------------------------

    def insert_operation(self, op: Operation) -> None:
        with self._write() as conn:
            conn.execute(
                operations.insert().values(
                    id=op.id,
                    model=op.model,
                    dialect=op.dialect,
                    owner=op.owner,
                    state=op.state.value,
                    progress=op.progress,
                    seed=op.seed,
                    request=op.request,
                    samples=[],
                    rai_filtered_count=0,
                    rai_filtered_reasons=[],
                    notes=op.notes,
                    resource_prefix=op.resource_prefix,
                    attempts=0,
                    cancel_requested=False,
                    create_time=op.create_time,
                    update_time=op.update_time,
                )
            )

    def get_operation(self, op_id: str) -> Operation | None:
        row = self._fetch_one(self._get_operation, op_id=op_id)
        return _operation_from_row(row) if row else None

    def list_operations(
        self,
        owner: str | None,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        ascending: bool = False,
        model: str | None = None,
    ) -> list[Operation]:
        """One owner's operations ordered by (create_time, id), newest first unless
        `ascending`; `after` is the (create_time, id) of the last row of the previous page."""
        query = select(operations).where(
            operations.c.owner.is_(None) if owner is None else operations.c.owner == owner
        )
        if model:
            query = query.where(operations.c.model == model)
        time, op_id = operations.c.create_time, operations.c.id
        if after is not None:
            later = (time > after[0]) | ((time == after[0]) & (op_id > after[1]))
            earlier = (time < after[0]) | ((time == after[0]) & (op_id < after[1]))
            query = query.where(later if ascending else earlier)
        order = (time.asc(), op_id.asc()) if ascending else (time.desc(), op_id.desc())
        with self._read() as conn:
            return [
                _operation_from_row(r) for r in conn.execute(query.order_by(*order).limit(limit))
            ]

    def update_operation(self, op_id: str, **values: Any) -> None:
        if "state" in values and isinstance(values["state"], State):
            values["state"] = values["state"].value
        if "samples" in values:
            values["samples"] = [s.__dict__ for s in values["samples"]]
        values["update_time"] = utcnow()
        with self._write() as conn:
            conn.execute(update(operations).where(operations.c.id == op_id).values(**values))

    def claim_operation(self, op_id: str, owner: str, lease_seconds: float) -> Operation | None:
        """Move a queued operation to running (once), leased to `owner` for `lease_seconds`;
        None if someone else has it or it ended."""
        now = utcnow()
        queued = (operations.c.id == op_id, operations.c.state == State.QUEUED.value)
        with self._write() as conn:
            if self._skip_locked and not self._lock_row(conn, operations, queued):
                return None
            result = conn.execute(
                update(operations)
                .where(*queued)
                .values(
                    state=State.RUNNING.value,
                    attempts=operations.c.attempts + 1,
                    lease_owner=owner,
                    lease_expires=now + timedelta(seconds=lease_seconds),
                    update_time=now,
                )
            )
            if result.rowcount != 1:
                return None
        return self.get_operation(op_id)

    @staticmethod
    def _lock_row(conn: Connection, table: Table, where: Sequence[Any]) -> bool:
        """PostgreSQL: lock the row that `where` picks, FOR UPDATE SKIP LOCKED, in `conn`'s
        transaction; False if there is none or another transaction holds it (a concurrent
        claimer, which then wins): a claim never waits on another's and never takes a row
        twice. The conditional UPDATE after it stays the guard everywhere (SQLite)."""
        picked = select(table.c.id).where(*where).with_for_update(skip_locked=True)
        return conn.execute(picked).first() is not None

    def fair_next_queued(self) -> str | None:
        """The id of the queued operation to run next, if any: round robin between owners
        (`_FAIR_NEXT`), so that one key's many jobs do not hold back another key's few."""
        with self._read() as conn:
            row = conn.execute(_FAIR_NEXT).first()
        return row.id if row is not None else None

    def queued_before(self, cutoff: datetime, limit: int) -> list[tuple[str, str]]:
        """(id, model) of queued operations whose row was last touched before `cutoff`,
        oldest first (the reconciler's candidates)."""
        query = (
            select(operations.c.id, operations.c.model)
            .where(operations.c.state == State.QUEUED.value, operations.c.update_time < cutoff)
            .order_by(operations.c.create_time, operations.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [(row.id, row.model) for row in conn.execute(query)]

    def touch_queued(self, op_id: str, before: datetime, now: datetime) -> bool:
        """Set a queued operation's `update_time` to `now` if it was last touched before
        `before`; False if not (claimed, cancelled, or touched since by another process)."""
        with self._write() as conn:
            result = conn.execute(
                update(operations)
                .where(
                    operations.c.id == op_id,
                    operations.c.state == State.QUEUED.value,
                    operations.c.update_time < before,
                )
                .values(update_time=now)
            )
            return result.rowcount == 1

    def count_unfinished(self, owner: str | None) -> int:
        """How many of `owner`'s operations are queued or running (None: the anonymous owner)."""
        query = select(func.count()).where(
            operations.c.owner.is_(None) if owner is None else operations.c.owner == owner,
            operations.c.state.in_((State.QUEUED.value, State.RUNNING.value)),
        )
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def renew_lease(self, op_id: str, owner: str, lease_seconds: float, **values: Any) -> bool:
        """Extend `owner`'s lease on a running operation, writing `values` (progress) with
        it. False if the operation is no longer running under that lease: it ended, was
        deleted, or was taken over after the lease expired."""
        now = utcnow()
        with self._write() as conn:
            result = conn.execute(
                update(operations)
                .where(
                    operations.c.id == op_id,
                    operations.c.state == State.RUNNING.value,
                    operations.c.lease_owner == owner,
                )
                .values(
                    lease_expires=now + timedelta(seconds=lease_seconds), update_time=now, **values
                )
            )
            return result.rowcount == 1

    def lease_of(self, op_id: str) -> tuple[str | None, datetime | None]:
        """(owner, expiry) of an operation's lease; (None, None) when it has none."""
        query = select(operations.c.lease_owner, operations.c.lease_expires).where(
            operations.c.id == op_id
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None or row.lease_owner is None:
            return None, None
        return row.lease_owner, _aware(row.lease_expires) if row.lease_expires else None

    def finish_operation(
        self,
        op_id: str,
        state: State,
        *,
        expect: State = State.RUNNING,
        lease_owner: str | None = None,
        usage_row: dict[str, Any] | None = None,
        **values: Any,
    ) -> bool:
        """End an operation that is still in state `expect` (and, given `lease_owner`, still
        leased to it); False if it is not (a cancel won the race, it was deleted, or the
        lease was taken over). `usage_row` (the columns of a `usage` row but the time) is
        written in the same transaction, only if the guarded update matched: one row per
        operation that ended, however often a failed final write is tried again."""
        if "samples" in values:
            values["samples"] = [s.__dict__ for s in values["samples"]]
        guard = [operations.c.id == op_id, operations.c.state == expect.value]
        if lease_owner is not None:
            guard.append(operations.c.lease_owner == lease_owner)
        now = utcnow()
        with self._write() as conn:
            result = conn.execute(
                update(operations)
                .where(*guard)
                .values(
                    state=state.value,
                    lease_owner=None,
                    lease_expires=None,
                    update_time=now,
                    **values,
                )
            )
            if result.rowcount != 1:
                return False
            if usage_row is not None:
                conn.execute(
                    usage.insert().values(
                        operation_id=op_id,
                        finish_time=now,
                        day=now.date().isoformat(),
                        **usage_row,
                    )
                )
            events = self._write_finish_events(conn, op_id, now)
        if events and self.finish_events is not None:
            self.finish_events.enqueued()
        return True

    def _write_finish_events(self, conn: Connection, op_id: str, now: datetime) -> int:
        """The webhook events of an operation that just ended (`finish_events` builds them
        from its row and its owner's enabled webhooks), in the ending transaction; how many."""
        if self.finish_events is None:
            return 0
        row = conn.execute(select(operations).where(operations.c.id == op_id)).first()
        if row is None:
            return 0
        op = _operation_from_row(row)
        query = (
            select(webhooks)
            .where(_owned_by(op.owner), webhooks.c.state == "enabled")
            .order_by(webhooks.c.create_time, webhooks.c.id)
        )
        hooks = [_webhook_from_row(r) for r in conn.execute(query)]
        rows = self.finish_events.rows(op, hooks, now)
        if rows:
            conn.execute(webhook_events.insert(), rows)
        return len(rows)

    def request_cancel(self, op_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                update(operations)
                .where(operations.c.id == op_id)
                .values(cancel_requested=True, update_time=utcnow())
            )

    def cancel_requested(self, op_id: str) -> bool:
        row = self._fetch_one(self._cancel_requested, op_id=op_id)
        return row is None or bool(row.cancel_requested)

    def delete_operation(self, op_id: str) -> None:
        with self._write() as conn:
            conn.execute(operations.delete().where(operations.c.id == op_id))

    def queued_operations(self) -> list[str]:
        """The ids of every queued operation, oldest first."""
        query = (
            select(operations.c.id)
            .where(operations.c.state == State.QUEUED.value)
            .order_by(operations.c.create_time, operations.c.id)
        )
        with self._read() as conn:
            return [r.id for r in conn.execute(query)]

    def lease_owners(self) -> list[str]:
        """The distinct owners of the leases of running operations."""
        query = (
            select(operations.c.lease_owner)
            .where(operations.c.state == State.RUNNING.value, operations.c.lease_owner.isnot(None))
            .distinct()
        )
        with self._read() as conn:
            return [r.lease_owner for r in conn.execute(query)]

    def _expired(self, now: datetime, dead_owners: Sequence[str]) -> Any:
        """Running, and its lease ended before `now` (or it has none: a row from before
        leases), or its owner is known to be gone."""
        ended = operations.c.lease_expires.is_(None) | (operations.c.lease_expires < now)
        if dead_owners:
            ended = ended | operations.c.lease_owner.in_(list(dead_owners))
        return (operations.c.state == State.RUNNING.value) & ended

    def expired_leases(self, now: datetime, dead_owners: Sequence[str] = ()) -> list[Operation]:
        """Running operations whose worker is gone: lease expired by `now`, or owned by one
        of `dead_owners`."""
        query = (
            select(operations)
            .where(self._expired(now, dead_owners))
            .order_by(operations.c.create_time)
        )
        with self._read() as conn:
            return [_operation_from_row(r) for r in conn.execute(query)]

    def requeue_expired(self, op_id: str, now: datetime, dead_owners: Sequence[str] = ()) -> bool:
        """Queue again an operation whose worker is gone (as `expired_leases`); False if its
        worker renewed the lease meanwhile, or someone else already recovered it."""
        return self._end_lease(op_id, now, dead_owners, state=State.QUEUED.value, progress=0.0)

    def fail_expired(
        self, op_id: str, now: datetime, dead_owners: Sequence[str], error_code: int, message: str
    ) -> bool:
        """Fail an operation whose worker is gone, under the same guard."""
        return self._end_lease(
            op_id,
            now,
            dead_owners,
            state=State.FAILED.value,
            error_code=error_code,
            error_message=message,
        )

    def _end_lease(
        self, op_id: str, now: datetime, dead_owners: Sequence[str], **values: Any
    ) -> bool:
        """Write `values` and drop the lease, if the operation's worker is still gone; an end
        (failed) writes its webhook events with it."""
        ended = values.get("state") == State.FAILED.value
        with self._write() as conn:
            result = conn.execute(
                update(operations)
                .where(operations.c.id == op_id, self._expired(now, dead_owners))
                .values(lease_owner=None, lease_expires=None, update_time=utcnow(), **values)
            )
            if result.rowcount != 1:
                return False
            events = self._write_finish_events(conn, op_id, utcnow()) if ended else 0
        if events and self.finish_events is not None:
            self.finish_events.enqueued()
        return True

    # usage ------------------------------------------------------------------------------

    def usage_totals(
        self,
        start: datetime,
        end: datetime,
        group_by: Sequence[str] = (),
        *,
        owner: str | None = None,
        everyone: bool = False,
    ) -> list[dict[str, Any]]:
        """Sums of the usage rows that finished in [start, end), one dict per group of
        `group_by` (names of `USAGE_GROUPS`), in group order: operations, seconds, samples,
        engine_seconds, veo_price_usd (None when no row had a price). One owner's rows
        (None: the anonymous one), or with `everyone` all of them."""
        u = usage.c
        groups = [USAGE_GROUPS[name].label(name) for name in group_by]
        query = select(
            *groups,
            func.count().label("operations"),
            func.coalesce(func.sum(u.seconds), 0.0).label("seconds"),
            func.coalesce(func.sum(u.samples), 0).label("samples"),
            func.coalesce(func.sum(u.engine_seconds), 0.0).label("engine_seconds"),
            func.sum(u.veo_price_usd).label("veo_price_usd"),
        ).where(u.finish_time >= start, u.finish_time < end)
        if not everyone:
            query = query.where(u.owner.is_(None) if owner is None else u.owner == owner)
        if groups:
            columns = [USAGE_GROUPS[name] for name in group_by]
            query = query.group_by(*columns).order_by(*columns)
        with self._read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        # An aggregate with no group answers one row even when nothing matched.
        return [r for r in rows if r["operations"]]

    def usage_of(self, op_id: str) -> dict[str, Any] | None:
        """The usage row of one operation, or None (it did not succeed)."""
        with self._read() as conn:
            row = conn.execute(select(usage).where(usage.c.operation_id == op_id)).first()
        if row is None:
            return None
        return {**row._mapping, "finish_time": _aware(row.finish_time)}

    # files ------------------------------------------------------------------------------

    def insert_file(self, record: FileRecord) -> None:
        with self._write() as conn:
            conn.execute(files.insert().values(**record.__dict__))

    def get_file(self, file_id: str) -> FileRecord | None:
        row = self._fetch_one(self._get_file, file_id=file_id)
        return _file_from_row(row) if row else None

    def files_of(self, op_id: str) -> list[FileRecord]:
        with self._read() as conn:
            rows = conn.execute(select(files).where(files.c.operation_id == op_id))
            return [_file_from_row(r) for r in rows]

    def touch_file(self, file_id: str, expire_time: datetime) -> None:
        with self._write() as conn:
            conn.execute(update(files).where(files.c.id == file_id).values(expire_time=expire_time))

    def mark_file_deleted(self, file_id: str) -> None:
        with self._write() as conn:
            conn.execute(update(files).where(files.c.id == file_id).values(deleted=True))

    def expired_files(self, now: datetime) -> list[FileRecord]:
        query = select(files).where(files.c.expire_time <= now, files.c.deleted.is_(False))
        with self._read() as conn:
            return [_file_from_row(r) for r in conn.execute(query)]

    # api keys ---------------------------------------------------------------------------

    def insert_key(self, key_id: str, key_hash: str, name: str, **values: Any) -> None:
        """A new key; `values` are columns of `KEY_FIELDS` (admin, expiry, limits)."""
        unknown = set(values) - KEY_FIELDS
        if unknown:
            raise ValueError(f"not key fields: {sorted(unknown)}")
        with self._write() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key_id, key_hash=key_hash, name=name, create_time=utcnow(), **values
                )
            )

    def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        row = self._fetch_one(self._key_by_hash, key_hash=key_hash)
        return _key_from_row(row) if row else None

    def get_key(self, key_id: str) -> KeyRecord | None:
        with self._read() as conn:
            row = conn.execute(select(*_KEY_COLUMNS).where(api_keys.c.id == key_id)).first()
        return _key_from_row(row) if row else None

    def update_key(self, key_id: str, **values: Any) -> bool:
        """Change `KEY_FIELDS` of a key; False if there is no such key."""
        unknown = set(values) - KEY_FIELDS
        if unknown:
            raise ValueError(f"not key fields: {sorted(unknown)}")
        if not values:
            return self.get_key(key_id) is not None
        with self._write() as conn:
            statement = update(api_keys).where(api_keys.c.id == key_id).values(**values)
            return conn.execute(statement).rowcount == 1

    def count_keys(self) -> int:
        with self._read() as conn:
            return len(conn.execute(select(api_keys.c.id)).all())

    def list_keys(self) -> list[KeyRecord]:
        query = select(*_KEY_COLUMNS).order_by(api_keys.c.create_time, api_keys.c.id)
        with self._read() as conn:
            return [_key_from_row(r) for r in conn.execute(query)]

    def delete_key(self, key_id: str) -> bool:
        with self._write() as conn:
            return conn.execute(api_keys.delete().where(api_keys.c.id == key_id)).rowcount == 1

    def operations_since(
        self, since: datetime, *, owner: str | None = None, everyone: bool = False
    ) -> list[Any]:
        """(owner, state, request) of the operations created at or after `since`: one
        owner's (None: the anonymous one), or with `everyone` all of them."""
        o = operations.c
        query = select(o.owner, o.state, o.request).where(o.create_time >= since)
        if not everyone:
            query = query.where(o.owner.is_(None) if owner is None else o.owner == owner)
        with self._read() as conn:
            return list(conn.execute(query))

    # rate limits ------------------------------------------------------------------------

    def count_request(self, owner: str, kind: str, minute: int, added: int = 1) -> int:
        """Add `added` requests of `owner` to its counter of `minute` (unix time // 60);
        returns the count so far, every process's. One upsert, so the processes share it."""
        dialect = self.engine.dialect.name
        with self._write() as conn:
            if dialect not in ("sqlite", "postgresql"):  # no ON CONFLICT: write, then read
                return self._count_portably(conn, owner, kind, minute, added)
            row = {"owner": owner, "kind": kind, "minute": minute, "count": added}
            return int(conn.execute(_upsert_count(dialect, added).values(**row)).scalar_one())

    def _count_portably(
        self, conn: Connection, owner: str, kind: str, minute: int, added: int
    ) -> int:
        r = rate_counts.c
        where = (r.owner == owner, r.kind == kind, r.minute == minute)
        bumped = conn.execute(update(rate_counts).where(*where).values(count=r.count + added))
        if bumped.rowcount == 0:
            row = {"owner": owner, "kind": kind, "minute": minute, "count": added}
            conn.execute(rate_counts.insert().values(**row))
        return int(conn.execute(select(r.count).where(*where)).scalar_one())

    def forget_counts_before(self, minute: int) -> None:
        """Drop the counters of minutes before `minute`: they limit nothing any more."""
        with self._write() as conn:
            conn.execute(rate_counts.delete().where(rate_counts.c.minute < minute))

    # /v1/videos: idempotency keys ---------------------------------------

    def get_idempotency(self, owner: str | None, key: str) -> tuple[str, str, datetime] | None:
        """(operation id, request fingerprint, create time) stored for this key, or None."""
        query = select(
            video_idempotency.c.operation_id,
            video_idempotency.c.fingerprint,
            video_idempotency.c.create_time,
        ).where(video_idempotency.c.owner == (owner or ""), video_idempotency.c.key == key)
        with self._read() as conn:
            row = conn.execute(query).first()
        return (row.operation_id, row.fingerprint, _aware(row.create_time)) if row else None

    def insert_idempotency(
        self, owner: str | None, key: str, operation_id: str, fingerprint: str
    ) -> bool:
        """False if another request stored this key first."""
        try:
            with self._write() as conn:
                conn.execute(
                    video_idempotency.insert().values(
                        owner=owner or "",
                        key=key,
                        operation_id=operation_id,
                        fingerprint=fingerprint,
                        create_time=utcnow(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def delete_idempotency(self, owner: str | None, key: str) -> None:
        with self._write() as conn:
            conn.execute(
                video_idempotency.delete().where(
                    video_idempotency.c.owner == (owner or ""), video_idempotency.c.key == key
                )
            )

    # videos this server made ------------------------------------------------------------

    def record_made_video(self, sha256: str, file_id: str) -> None:
        """Remember that this server made the MP4 with this sha256 hex digest. Idempotent: the
        same request and seed give byte-identical files, so a digest may come again (the
        first file id is kept). The row outlives the file's retention deletion, as it is a
        few dozen bytes and a user may extend a video they downloaded before it expired."""
        statement = _insert_ignoring_duplicates(self.engine.dialect.name, made_videos).values(
            sha256=sha256, file_id=file_id, create_time=utcnow()
        )
        try:
            with self._write() as conn:
                conn.execute(statement)
        except IntegrityError:  # a dialect without INSERT ... ON CONFLICT DO NOTHING
            pass

    def is_made_video(self, sha256: str) -> bool:
        """True if this server stored an MP4 with this sha256 hex digest as an output."""
        query = select(made_videos.c.sha256).where(made_videos.c.sha256 == sha256)
        with self._read() as conn:
            return conn.execute(query).first() is not None


def _upsert_count(dialect: str, added: int) -> Any:
    """INSERT a counter at `added`, or add `added` to it, RETURNING the count (SQLite,
    PostgreSQL: the callers check the dialect)."""
    insert: Any = (
        sqlite_insert(rate_counts) if dialect == "sqlite" else postgresql_insert(rate_counts)
    )
    return insert.on_conflict_do_update(
        index_elements=["owner", "kind", "minute"],
        set_={"count": rate_counts.c.count + added},
    ).returning(rate_counts.c.count)


def _insert_ignoring_duplicates(dialect: str, table: Table) -> Any:
    """An INSERT that skips a row whose primary key is already there (SQLite, PostgreSQL);
    a plain INSERT elsewhere, whose duplicate the caller ignores."""
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    return table.insert()


# webhooks (migration 0008) ----------------------------------------------------------------
# WebhookService's static webhooks, and the delivery outbox (service/deliveries.py's loop).

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64)),  # the key id; NULL for the anonymous owner
    Column("name", String(256), nullable=False, default=""),
    Column("uri", Text, nullable=False),
    Column("subscribed_events", JSON, nullable=False),
    Column("state", String(48), nullable=False),
    # Newest first: {"encrypted", "truncated_secret", "expire_time": RFC 3339 | None}.
    Column("signing_secrets", JSON, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
)
Index("ix_webhooks_owner_create_time", webhooks.c.owner, webhooks.c.create_time)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("msg_id", String(64), nullable=False, index=True),
    Column("owner", String(64)),
    Column("webhook_id", String(64)),  # NULL for a dynamic (webhookConfig) target
    Column("target_uri", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # static | dynamic
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the JSON envelope, as text
    Column("user_metadata", Text),  # JSON text
    Column("operation_id", String(64), index=True),
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_time", DateTime(timezone=True), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("single_attempt", Boolean, nullable=False, default=False),
)
Index(
    "ix_webhook_events_state_next_attempt_time",
    webhook_events.c.state,
    webhook_events.c.next_attempt_time,
)
Index(
    "ix_webhook_events_webhook_id_create_time",
    webhook_events.c.webhook_id,
    webhook_events.c.create_time,
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, index=True),
    Column("attempt_time", DateTime(timezone=True), nullable=False),
    Column("status", Integer),  # the receiver's HTTP status; NULL: no answer
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
)

# What `WebhookStore.update` may change.
_WEBHOOK_FIELDS = frozenset({"name", "uri", "subscribed_events", "state", "signing_secrets"})


@dataclass
class WebhookRecord:
    id: str
    owner: str | None
    name: str
    uri: str
    subscribed_events: list[str]
    state: str
    signing_secrets: list[dict[str, Any]]
    create_time: datetime
    update_time: datetime


def _webhook_from_row(row: Any) -> WebhookRecord:
    return WebhookRecord(
        id=row.id,
        owner=row.owner,
        name=row.name,
        uri=row.uri,
        subscribed_events=list(row.subscribed_events),
        state=row.state,
        signing_secrets=list(row.signing_secrets),
        create_time=_aware(row.create_time),
        update_time=_aware(row.update_time),
    )


def _owned_by(owner: str | None) -> Any:
    """The webhooks of exactly this tenant: an admin key sees only its own too."""
    return webhooks.c.owner.is_(None) if owner is None else webhooks.c.owner == str(owner)


def insert_webhook_event(
    conn: Connection,
    *,
    msg_id: str,
    owner: str | None,
    target_uri: str,
    kind: str,
    event_type: str,
    payload: str,
    webhook_id: str | None = None,
    user_metadata: str | None = None,
    operation_id: str | None = None,
    single_attempt: bool = False,
    now: datetime | None = None,
) -> str:
    """Add one pending outbox row, due now, on `conn` (so a caller's transaction, e.g. the
    one that finishes an operation, writes it or nothing); returns the row's id."""
    now = now or utcnow()
    event_id = uuid.uuid4().hex
    conn.execute(
        webhook_events.insert().values(
            id=event_id,
            msg_id=msg_id,
            owner=None if owner is None else str(owner),
            webhook_id=webhook_id,
            target_uri=target_uri,
            kind=kind,
            event_type=event_type,
            payload=payload,
            user_metadata=user_metadata,
            operation_id=operation_id,
            state="pending",
            attempts=0,
            next_attempt_time=now,
            create_time=now,
            update_time=now,
            single_attempt=single_attempt,
        )
    )
    return event_id


class WebhookStore:
    """The webhooks table, always scoped to one tenant, on a `Database`'s connections."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, record: WebhookRecord, limit: int) -> bool:
        """Store a new webhook unless its tenant already has `limit`: counted and inserted
        in one write transaction, so two creates cannot both take the last place. An id in
        use raises IntegrityError."""
        count = select(func.count()).select_from(webhooks).where(_owned_by(record.owner))
        with self.db._write() as conn:
            if conn.execute(count).scalar_one() >= limit:
                return False
            conn.execute(
                webhooks.insert().values(
                    id=record.id,
                    owner=None if record.owner is None else str(record.owner),
                    name=record.name,
                    uri=record.uri,
                    subscribed_events=record.subscribed_events,
                    state=record.state,
                    signing_secrets=record.signing_secrets,
                    create_time=record.create_time,
                    update_time=record.update_time,
                )
            )
        return True

    def exists(self, webhook_id: str) -> bool:
        """True if any tenant has a webhook with this id."""
        query = select(webhooks.c.id).where(webhooks.c.id == webhook_id)
        with self.db._read() as conn:
            return conn.execute(query).first() is not None

    def get(self, webhook_id: str, owner: str | None) -> WebhookRecord | None:
        query = select(webhooks).where(webhooks.c.id == webhook_id, _owned_by(owner))
        with self.db._read() as conn:
            row = conn.execute(query).first()
        return _webhook_from_row(row) if row is not None else None

    def page(
        self, owner: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[WebhookRecord]:
        """Up to `limit` webhooks oldest first (create_time, then id), after the given one."""
        query = select(webhooks).where(_owned_by(owner))
        if after is not None:
            time, last_id = after
            query = query.where(
                (webhooks.c.create_time > time)
                | ((webhooks.c.create_time == time) & (webhooks.c.id > last_id))
            )
        query = query.order_by(webhooks.c.create_time, webhooks.c.id).limit(limit)
        with self.db._read() as conn:
            return [_webhook_from_row(row) for row in conn.execute(query)]

    def update(self, webhook_id: str, owner: str | None, **values: Any) -> WebhookRecord | None:
        """Change the given fields (and update_time); the new record, or None if not found."""
        unknown = set(values) - _WEBHOOK_FIELDS
        if unknown:
            raise ValueError(f"not webhook fields: {sorted(unknown)}")
        where = (webhooks.c.id == webhook_id, _owned_by(owner))
        with self.db._write() as conn:
            done = conn.execute(
                update(webhooks).where(*where).values(update_time=utcnow(), **values)
            )
            if done.rowcount == 0:
                return None
            row = conn.execute(select(webhooks).where(*where)).one()
        return _webhook_from_row(row)

    def delete(self, webhook_id: str, owner: str | None) -> bool:
        """Remove a webhook and give up its pending deliveries (they would go nowhere)."""
        now = utcnow()
        with self.db._write() as conn:
            done = conn.execute(
                webhooks.delete().where(webhooks.c.id == webhook_id, _owned_by(owner))
            )
            if done.rowcount == 0:
                return False
            conn.execute(
                update(webhook_events)
                .where(webhook_events.c.webhook_id == webhook_id)
                .where(webhook_events.c.state == "pending")
                .values(state="failed", last_error="webhook deleted", update_time=now)
            )
        return True

    def enabled_for_event(self, owner: str | None, event_type: str) -> list[WebhookRecord]:
        """The tenant's enabled webhooks subscribed to `event_type` (for enqueueing)."""
        query = (
            select(webhooks)
            .where(_owned_by(owner), webhooks.c.state == "enabled")
            .order_by(webhooks.c.create_time, webhooks.c.id)
        )
        with self.db._read() as conn:
            rows = conn.execute(query).all()
        records = [_webhook_from_row(row) for row in rows]
        return [record for record in records if event_type in record.subscribed_events]

    def insert_event(self, **values: Any) -> str:
        """`insert_webhook_event` in a transaction of its own (a ping)."""
        with self.db._write() as conn:
            return insert_webhook_event(conn, **values)

    def events_of(self, webhook_id: str) -> list[dict[str, Any]]:
        """The outbox rows of one webhook, oldest first (tests, the deliveries route)."""
        query = (
            select(webhook_events)
            .where(webhook_events.c.webhook_id == webhook_id)
            .order_by(webhook_events.c.create_time, webhook_events.c.id)
        )
        with self.db._read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


# watermarks (migration 0009) --------------------------------------------------------------
# The invisible watermark's payload of every sample marked (service/watermarks.py), and the
# operation and sample index it was made for: what verify names for a marked file.

watermarks = Table(
    "watermarks",
    metadata,
    Column("payload", String(16), primary_key=True),  # 64 bits, 16 lower-case hex digits
    Column("operation_id", String(64), primary_key=True),
    Column("sample_index", Integer, primary_key=True),
    Column("create_time", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class WatermarkRecord:
    payload: int
    operation_id: str
    sample_index: int
    create_time: datetime


class WatermarkStore:
    """The `watermarks` table: payload → the samples marked with it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, payload: int, operation_id: str, sample_index: int) -> None:
        """Remember a marked sample (again for a retried job: nothing changes)."""
        statement = _insert_ignoring_duplicates(self.db.engine.dialect.name, watermarks).values(
            payload=f"{payload:016x}",
            operation_id=operation_id,
            sample_index=sample_index,
            create_time=utcnow(),
        )
        try:
            with self.db._write() as conn:
                conn.execute(statement)
        except IntegrityError:
            pass  # another dialect's duplicate: already recorded

    def lookup(self, payload: int) -> list[WatermarkRecord]:
        """The samples marked with `payload`, newest first."""
        query = (
            select(watermarks)
            .where(watermarks.c.payload == f"{payload:016x}")
            .order_by(watermarks.c.create_time.desc(), watermarks.c.operation_id)
        )
        with self.db._read() as conn:
            rows = conn.execute(query).all()
        return [
            WatermarkRecord(
                payload=int(row.payload, 16),
                operation_id=row.operation_id,
                sample_index=row.sample_index,
                create_time=_aware(row.create_time),
            )
            for row in rows
        ]
