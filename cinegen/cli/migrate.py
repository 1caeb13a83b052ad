"""`cinegen migrate`: bring the database (CINEGEN_DATABASE_URL, else the local SQLite file) to
the newest schema and exit.

A deployment runs it once before starting its nodes; a node that starts without it migrates
too (`Database.migrate()`), under PostgreSQL's advisory lock, so neither way races.
Exit codes: 0 at head, 3 the database cannot be reached.
"""

from __future__ import annotations

import argparse

from cinegen.cli.errors import EXIT_UNREACHABLE, fail
from cinegen.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    migrate = sub.add_parser("migrate", help="bring the database to the newest schema")
    migrate.set_defaults(func=cmd_migrate)


def cmd_migrate(_args: argparse.Namespace) -> int:
    from cinegen.store.db import Database, is_unavailable

    db = Database(Settings().resolved_database_url)
    try:
        before = db.migrate()
        after = db.revision()
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        fail(f"the database cannot be reached ({type(exc).__name__}); is it running?")
        return EXIT_UNREACHABLE
    finally:
        db.engine.dispose()
    change = "already at head" if before == after else f"migrated from {before or 'empty'}"
    print(f"cinegen: database at revision {after} ({change})")
    return 0
