"""The cluster of deploy/cluster.py for a test: Redis, PostgreSQL, moto S3, 2 API nodes and
2 workers as separate processes on loopback, with settings that make the faults quick to see
(a 5 s reconciler grace, a 0.3 s watchdog poll), and what a test needs to drive and inspect
it: a google-genai client per API node, the database, the workers' logs.

Every API key and log of the cluster joins the session's check that no key reached a log
(tests/conftest.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from google import genai
from google.genai import types
from sqlalchemy import select

from cinegen.store.db import Database, files, operations
from deploy.cluster import ApiNode, Cluster, Worker
from tests.support.server import CREATED_KEYS, SERVER_LOGS

FAST_FAULTS = {
    "CINEGEN_RECONCILE_GRACE_SECONDS": "5",
    "CINEGEN_POLLS_PER_MINUTE": "0",  # the test polls 40 operations through one key
    "CINEGEN_POLL_INTERVAL_SECONDS": "0.3",
    "CINEGEN_LOG_LEVEL": "info",
}
BLOB_PREFIX = "videos-store/"  # Cluster.blob_url's prefix in the bucket
RESENT = "was queued but not claimed; sent to the broker again"  # jobs/reconcile.py's log line
REQUEUED = "lost its worker; running it again"  # service/operations.py's log line


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A started cluster, closed at the end whatever the test did to it."""
    topology = Cluster(
        tmp_path / "cluster", env_extra=FAST_FAULTS, key_options=("--max-concurrent", "100")
    )
    try:
        topology.start()
        CREATED_KEYS.append(topology.key)
        for part in [*topology.nodes, *topology.pool]:
            SERVER_LOGS.add(part.log_path)
        yield topology
    finally:
        topology.close()


def sdk(node: ApiNode, key: str) -> genai.Client:
    """google-genai in Gemini API mode, pointed at one API node."""
    options = types.HttpOptions(base_url=node.url, client_args={"trust_env": False}, timeout=60_000)
    return genai.Client(api_key=key, http_options=options)


def database(cluster: Cluster) -> Database:
    return Database(cluster.postgres.url)


def operation_ids(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return sorted(conn.execute(select(operations.c.id)).scalars())


def live_blob_keys(db: Database) -> set[str]:
    """The blob key of every file the database knows and has not deleted."""
    with db.engine.connect() as conn:
        rows = conn.execute(select(files.c.blob_key).where(files.c.deleted.is_(False)))
        return set(rows.scalars())


def logged_ids(pool: list[Worker], line: str) -> list[str]:
    """The operation ids of every `operation <id> <line>` the workers logged."""
    return [op_id for _when, op_id in logged(pool, line)]


def logged(pool: list[Worker], line: str) -> list[tuple[float, str]]:
    """(epoch seconds, operation id) of every `operation <id> <line>` the workers logged (the
    text log format's local time stamps), in time order."""
    pattern = re.compile(rf"^(\S+ \S+) .*operation ([0-9a-f]+) {re.escape(line)}", re.MULTILINE)
    found = [
        (datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp(), op_id)
        for worker in pool
        for stamp, op_id in pattern.findall(worker.log())
    ]
    return sorted(found)


def owner_pid(db: Database, op_id: str) -> int | None:
    """The pid of the worker process holding the operation's lease (the second part of a
    worker id, cinegen/service/workers.py); None without a lease."""
    owner, _expires = db.lease_of(op_id)
    return int(owner.split("-")[1]) if owner else None
