"""`cinegen serve | keys | models | generate | operations`.

`generate` and `operations` speak the Gemini API dialect to a running server (`--server`), or,
without one, run in this process on the local data directory with the server's own runtime
(`cinegen.app.build_runtime`, `submit_prediction`, `run_job`): the same rules, the same files.
Exit codes: 0 done, 1 refused by the server or the generation failed, 2 bad usage or an
unreadable local file, 3 the server cannot be reached, 130 interrupted (the operation is
cancelled).

Modules: `parser` (the parser and dispatch), `serve` (serve, keys, models), `clients` (the
server over HTTP or the runtime in this process), `generate`, `progress`, `operations`,
`errors` (exit codes and the one CLI error).
"""

from cinegen.cli.parser import main

__all__ = ["main"]
