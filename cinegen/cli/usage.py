"""`cinegen usage`: what was made and what Veo would have charged, as a table.

With `--server` it asks that server (`GET /v1beta/cinegen/usage`: the key's own usage, every
key's for an admin key); without, it reads the local data directory's database, every key's
(whoever can read the data directory is its operator).
"""

from __future__ import annotations

import argparse
from typing import Any

from cinegen.cli.clients import RemoteClient, add_client_options
from cinegen.cli.errors import EXIT_USAGE, CliError, fail

_SUMS = (
    ("operations", "operations"),
    ("seconds", "seconds"),
    ("samples", "samples"),
    ("engineSeconds", "engine_s"),
    ("veoPriceUsd", "veo_usd"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    usage = sub.add_parser("usage", help="seconds made and their Veo price, per key/model/day")
    usage.add_argument("--start", help="RFC 3339 or YYYY-MM-DD (UTC); default today")
    usage.add_argument("--end", help="RFC 3339 (excluded) or YYYY-MM-DD (included)")
    usage.add_argument(
        "--group-by", help="comma-separated: key, model, mode, resolution, day (default none)"
    )
    add_client_options(usage)
    usage.set_defaults(func=cmd_usage)


def cmd_usage(args: argparse.Namespace) -> int:
    try:
        report = _remote(args) if args.server else _local(args)
    except CliError as exc:
        fail(exc.message)
        return exc.code
    print(format_table(report))
    return 0


class _UsageClient(RemoteClient):
    def usage(self, params: dict[str, str]) -> dict[str, Any]:
        return self._call("GET", "/v1beta/cinegen/usage", params=params)


def _remote(args: argparse.Namespace) -> dict[str, Any]:
    params = {
        name: value
        for name, value in (("start", args.start), ("end", args.end), ("group_by", args.group_by))
        if value
    }
    client = _UsageClient(args.server, args.key)
    try:
        return client.usage(params)
    finally:
        client.close()


def _local(args: argparse.Namespace) -> dict[str, Any]:
    from cinegen.api.usage import usage_json
    from cinegen.cli.serve import local_database
    from cinegen.core.errors import InvalidArgument
    from cinegen.service import usage
    from cinegen.settings import Settings

    try:
        query = usage.parse_query(args.start, args.end, args.group_by)
    except InvalidArgument as exc:
        raise CliError(exc.message, EXIT_USAGE) from exc
    db = local_database(Settings())
    return usage_json(usage.totals(db, query, owner=None, everyone=True))


def format_table(report: dict[str, Any]) -> str:
    """The groups' columns, then the sums; a total line last; the period first."""
    groups = list(report.get("groupBy", []))
    header = [*groups, *(title for _, title in _SUMS)]
    lines = [[_cell(row.get(g)) for g in groups] + _sums(row) for row in report["rows"]]
    total = ["total", *[""] * (len(groups) - 1)] if groups else []
    lines.append(total + _sums(report["total"]))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    text = [f"usage from {report['start']} to {report['end']}"]
    for line in (header, *lines):
        cells = [
            c.ljust(w) if i < len(groups) else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
    return "\n".join(text)


def _sums(row: dict[str, Any]) -> list[str]:
    price = row.get("veoPriceUsd")
    return [
        str(row.get("operations", 0)),
        f"{float(row.get('seconds', 0)):.1f}",
        str(row.get("samples", 0)),
        f"{float(row.get('engineSeconds', 0)):.1f}",
        f"{price:.2f}" if price is not None else "-",
    ]


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)
