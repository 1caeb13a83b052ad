"""`cinegen keys create | update | list | delete` with names, admin flags, expiry and limits,
through the installed entry point on a data dir of its own (no server)."""

from __future__ import annotations

from pathlib import Path

from cinegen.api.auth import hash_key
from cinegen.store.db import Database
from tests.cli.test_cli import cli
from tests.support.server import REPO


def _db(data: Path) -> Database:
    return Database(f"sqlite:///{(data / 'cinegen.db').resolve()}")


def _table(data: Path) -> dict[str, list[str]]:
    listed = cli("keys", "list", cwd=REPO, data_dir=data)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "NAME", "ADMIN", "EXPIRES", "CONCURRENT", "SECONDS/DAY", "REQ/MIN", "OPS", "TODAY"
    ]  # fmt: skip
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


def test_keys_with_limits_expiry_and_admin(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = cli(
        "keys", "create", "--name", "ci", "--admin", "--expires-days", "2",
        "--max-concurrent", "3", "--video-seconds-per-day", "600", cwd=REPO, data_dir=data,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    key = _db(data).key_by_hash(hash_key(secret))
    assert key is not None and key.admin and key.name == "ci"
    assert (key.max_concurrent, key.video_seconds_per_day, key.requests_per_minute) == (
        3,
        600,
        None,
    )
    plain = cli("keys", "create", cwd=REPO, data_dir=data)
    assert plain.returncode == 0
    rows = _table(data)
    # ci: admin, expiring, its own limits; the default (server's) limits carry a `*`.
    assert rows[key.id][:2] == ["ci", "yes"]
    assert rows[key.id][4:] == ["3", "600", "none*", "0", "ops,", "0", "s"]
    plain_id = next(k for k in rows if k != key.id)
    assert rows[plain_id] == ["-", "no", "never", "32*", "none*", "none*", "0", "ops,", "0", "s"]

    changed = cli(
        "keys", "update", key.id, "--max-concurrent", "default", "--requests-per-minute", "0",
        "--no-expiry", "--no-admin", "--name", "ci-2", cwd=REPO, data_dir=data,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert _table(data)[key.id] == [
        "ci-2",
        "no",
        "never",
        "32*",
        "600",
        "none",
        "0",
        "ops,",
        "0",
        "s",
    ]
    assert cli("keys", "update", key.id, "--revoke", cwd=REPO, data_dir=data).returncode == 0
    assert _table(data)[key.id][2] == "revoked"

    bad = cli("keys", "update", key.id, "--max-concurrent", "-2", cwd=REPO, data_dir=data)
    assert bad.returncode == 2 and "expected a number >= 0 or 'default'" in bad.stderr
    missing = cli("keys", "update", "nope", "--name", "x", cwd=REPO, data_dir=data)
    assert missing.returncode == 1 and "no key with id nope" in missing.stderr
    assert cli("keys", "delete", key.id, cwd=REPO, data_dir=data).returncode == 0
    assert set(_table(data)) == {plain_id}
