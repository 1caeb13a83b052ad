"""Exit codes and the one error the commands raise, so each command reports failures alike."""

from __future__ import annotations

import sys

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as `cinegen: <message>` with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str) -> None:
    """Print a failure the way every command does: one `cinegen: ...` line on stderr."""
    print(f"cinegen: {message}", file=sys.stderr)
