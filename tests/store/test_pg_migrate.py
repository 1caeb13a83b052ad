"""Migrations on PostgreSQL: all of them run there and give the schema the models describe,
and nodes that start together on one fresh database migrate it once (the advisory lock in
`Database.migrate()`), through `cinegen migrate` in separate processes."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from cinegen.store.db import Database, metadata
from tests.support.postgres import PostgresServer

NODES = 4


def _migrate_command(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CINEGEN_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "cinegen.cli", "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_nodes_starting_together_migrate_once(postgres: PostgresServer) -> None:
    url = postgres.create_database(migrated=False)
    nodes = [_migrate_command(url) for _ in range(NODES)]
    outputs = [node.communicate(timeout=120)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0] * NODES, outputs
    assert sum("migrated from empty" in out for out in outputs) == 1, outputs
    assert sum("already at head" in out for out in outputs) == NODES - 1, outputs
    db = Database(url)
    try:
        assert db.revision() == db.head_revision() is not None
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        db.engine.dispose()


def test_migrations_give_the_models_schema_on_both(empty_database_url: str) -> None:
    """What autogenerate would still change after the migrations: nothing on PostgreSQL that
    it would not on SQLite, so the two run the same schema."""
    db = Database(empty_database_url)
    db.migrate()
    db.engine.dispose()
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []
