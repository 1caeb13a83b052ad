"""Following an operation until it is done: rich's bar on a terminal, plain lines otherwise
(a log or a CI run gets one line per ten percent, not a redraw per poll)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cinegen.cli.clients import Client

if TYPE_CHECKING:
    from rich.console import Console

POLL_SECONDS = 0.25


def follow(client: Client, name: str) -> dict[str, Any]:
    """Poll until done, showing progress; the finished operation."""
    from rich.console import Console

    console = Console(stderr=True)
    if console.is_terminal:
        return _follow_bar(client, name, console)
    return _follow_lines(client, name)


def _poll(client: Client, name: str) -> Iterator[dict[str, Any]]:
    """The operation on every poll, the finished one last."""
    while True:
        op = client.get(name)
        yield op
        if op.get("done"):
            return
        time.sleep(POLL_SECONDS)


def _status(op: dict[str, Any]) -> tuple[float, str]:
    """Percent done and the state in lower case, as the progress shows them."""
    meta = op.get("metadata", {})
    return float(meta.get("progressPercent", 0)), str(meta.get("state", "running")).lower()


def _follow_bar(client: Client, name: str, console: Console) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold cyan]{task.description:>9}"),
        BarColumn(bar_width=None),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    op: dict[str, Any] = {}
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("queued", total=100)
        for op in _poll(client, name):
            percent, state = _status(op)
            progress.update(task, completed=percent, description=state)
    return op


def _follow_lines(client: Client, name: str) -> dict[str, Any]:
    shown = (-1, "")
    op: dict[str, Any] = {}
    for op in _poll(client, name):
        percent, state = _status(op)
        step = (int(percent // 10) * 10, state)
        if step != shown:
            print(f"cinegen: {state} {step[0]:3d}%", file=sys.stderr, flush=True)
            shown = step
    return op
