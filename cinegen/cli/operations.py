"""`cinegen operations list | get | cancel | delete`, on a server or on the local data."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cinegen.cli.clients import Client, add_client_options, run_with_client, sample_uris


def add_parser(sub: argparse._SubParsersAction) -> None:
    ops = sub.add_parser("operations", help="list, get, cancel or delete operations")
    ops_sub = ops.add_subparsers(dest="operations_command", required=True)
    listing = ops_sub.add_parser("list", help="this key's operations, newest first")
    listing.add_argument("--page-size", type=int, default=50)
    add_client_options(listing)
    for name, text in (
        ("get", "print one operation as JSON"),
        ("cancel", "cancel an operation"),
        ("delete", "delete an operation and its videos"),
    ):
        one = ops_sub.add_parser(name, help=text)
        one.add_argument("name", help="models/{model}/operations/{id}, or the id")
        add_client_options(one)
    ops.set_defaults(func=cmd_operations)


def cmd_operations(args: argparse.Namespace) -> int:
    return run_with_client(lambda client: operations(client, args), args)


def operations(client: Client, args: argparse.Namespace) -> int:
    """One subcommand; what it did on stdout, so scripts can read it."""
    command = args.operations_command
    if command == "list":
        print_operations(client.list(args.page_size).get("operations", []))
    elif command == "get":
        print(json.dumps(client.get(args.name), indent=2))
    elif command == "cancel":
        client.cancel(args.name)
        print(f"cancelled {args.name}")
    elif command == "delete":
        client.delete(args.name)
        print(f"deleted {args.name}")
    return 0


def print_operations(ops: list[dict[str, Any]]) -> None:
    """One line each: name, state, percent, created, number of videos; a note if none."""
    if not ops:
        print("no operations", file=sys.stderr)
    for op in ops:
        print(_operation_line(op))


def _operation_line(op: dict[str, Any]) -> str:
    meta = op.get("metadata", {})
    state = str(meta.get("state", "done" if op.get("done") else "running")).lower()
    created = str(meta.get("createTime", ""))[:19].replace("T", " ")
    percent = f"{float(meta.get('progressPercent', 0)):3.0f}%"
    return f"{op['name']}  {state:9} {percent}  {created}  {len(sample_uris(op))} video(s)"
