"""`cinegen keys create | update | list | delete`: API keys on this machine's database.

A limit is a number (0: no limit for this key) or `default` (the server's, from settings:
`CINEGEN_MAX_QUEUED_PER_KEY`, `CINEGEN_VIDEO_SECONDS_PER_DAY`, `CINEGEN_REQUESTS_PER_MINUTE`),
which is also what a key created without one gets. An admin key can do the same over HTTP
(`/v1beta/cinegen/keys`, api/keys.py).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cinegen.settings import Settings

if TYPE_CHECKING:
    from cinegen.service.quotas import Usage
    from cinegen.store.db import Database, KeyRecord

DEFAULT = "default"
_LIMITS = (
    ("--max-concurrent", "max_concurrent", "operations queued + running at once"),
    ("--video-seconds-per-day", "video_seconds_per_day", "seconds of video asked for a UTC day"),
    ("--requests-per-minute", "requests_per_minute", "requests other than reads a minute"),
)


def limit_value(text: str) -> int | None:
    """A limit on the command line: N >= 0, or `default` (None: the server's)."""
    if text.strip().lower() == DEFAULT:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or '{DEFAULT}', got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it")
    create.add_argument("--name", default="")
    create.add_argument("--admin", action="store_true", help="may manage keys, sees everything")
    _add_common(create)
    update = keys_sub.add_parser("update", help="change a key's name, expiry, limits")
    update.add_argument("key_id")
    update.add_argument("--name", default=None)
    update.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None)
    update.add_argument("--no-expiry", action="store_true", help="never expires")
    update.add_argument(
        "--revoke", action=argparse.BooleanOptionalAction, default=None, help="403 from now on"
    )
    _add_common(update)
    keys_sub.add_parser("list", help="keys, their limits and their usage today")
    delete = keys_sub.add_parser("delete", help="delete a key by id")
    delete.add_argument("key_id")
    keys.set_defaults(func=cmd_keys)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expires-days", type=float, default=None, metavar="D", help="expires D days from now"
    )
    for flag, _column, meaning in _LIMITS:
        parser.add_argument(
            flag, type=limit_value, default=argparse.SUPPRESS, metavar="N|default", help=meaning
        )


def changes_of(args: argparse.Namespace) -> dict[str, Any]:
    """The key columns the command line sets (a limit not named is left out)."""
    from cinegen.store.db import utcnow

    changes: dict[str, Any] = {c: getattr(args, c) for _f, c, _m in _LIMITS if hasattr(args, c)}
    if args.expires_days is not None:
        changes["expire_time"] = utcnow() + timedelta(days=args.expires_days)
    elif getattr(args, "no_expiry", False):
        changes["expire_time"] = None
    if args.admin is not None and (args.admin or args.keys_command == "update"):
        changes["admin"] = bool(args.admin)
    if getattr(args, "revoke", None) is not None:
        changes["revoke_time"] = utcnow() if args.revoke else None
    if args.keys_command == "update" and args.name is not None:
        changes["name"] = args.name
    return changes


def cmd_keys(args: argparse.Namespace) -> int:
    """`keys create | update | list | delete` on the local database."""
    from cinegen.cli.serve import local_database

    settings = Settings()
    db = local_database(settings)
    if args.keys_command == "create":
        return _create_key(db, args.name or "", changes_of(args))
    if args.keys_command == "update":
        return _update_key(db, args.key_id, changes_of(args))
    if args.keys_command == "list":
        return _list_keys(db, settings)
    return _delete_key(db, args.key_id)


def _create_key(db: Database, name: str, fields: dict[str, Any]) -> int:
    """The key on stdout (for `$(cinegen keys create)`), the note on stderr."""
    from cinegen.api.auth import create_key

    key_id, key = create_key(db, name, **fields)
    print(key)
    print(f"(key id {key_id}; stored hashed — this is the only time it is shown)", file=sys.stderr)
    return 0


def _update_key(db: Database, key_id: str, changes: dict[str, Any]) -> int:
    if not db.update_key(key_id, **changes):
        print(f"cinegen: no key with id {key_id}", file=sys.stderr)
        return 1
    print(f"key {key_id} updated (servers see it within a few seconds)", file=sys.stderr)
    return 0


_HEADER = ("ID", "NAME", "ADMIN", "EXPIRES", "CONCURRENT", "SECONDS/DAY", "REQ/MIN", "OPS TODAY")


def key_row(key: KeyRecord, settings: Settings, usage: Usage, now: datetime) -> list[str]:
    """One line of `keys list`: a limit the key does not set is the server's, marked `*`."""
    from cinegen.service.quotas import limits_of

    limits = limits_of(key, settings)

    def limit(own: int | None, value: int) -> str:
        return ("none" if value == 0 else str(value)) + ("*" if own is None else "")

    if key.revoke_time is not None:
        expires = "revoked"
    elif key.expire_time is None:
        expires = "never"
    else:
        expires = (
            "expired " if key.expire_time <= now else ""
        ) + f"{key.expire_time:%Y-%m-%d %H:%MZ}"
    return [
        key.id,
        key.name or "-",
        "yes" if key.admin else "no",
        expires,
        limit(key.max_concurrent, limits.max_concurrent),
        limit(key.video_seconds_per_day, limits.video_seconds_per_day),
        limit(key.requests_per_minute, limits.requests_per_minute),
        f"{usage.operations} ops, {usage.video_seconds} s",
    ]


def _list_keys(db: Database, settings: Settings) -> int:
    from cinegen.service.quotas import Usage, usage_today_by_key
    from cinegen.store.db import utcnow

    now = utcnow()
    usage = usage_today_by_key(db, now)
    rows = [list(_HEADER)] + [
        key_row(k, settings, usage.get(k.id, Usage()), now) for k in db.list_keys()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(
        "(* the server's default; usage today: operations created since 00:00 UTC that did "
        "not fail, and the seconds of video they ask for)",
        file=sys.stderr,
    )
    return 0


def _delete_key(db: Database, key_id: str) -> int:
    if not db.delete_key(key_id):
        print(f"cinegen: no key with id {key_id}", file=sys.stderr)
        return 1
    return 0
