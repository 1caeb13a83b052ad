"""`cinegen serve | keys | models`: the commands that work on this machine, never over HTTP.

Heavy imports (uvicorn, the app, the database) wait until a command runs, so `--help` and
`models` start fast.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import TYPE_CHECKING

from cinegen.cli import keys
from cinegen.core import logs
from cinegen.settings import Settings

if TYPE_CHECKING:
    from cinegen.store.db import Database


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`serve`, `keys` and `models`, in that order."""
    serve = sub.add_parser("serve", help="start the HTTP server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)
    keys.add_parser(sub)
    models = sub.add_parser("models", help="list the catalog")
    models.set_defaults(func=cmd_models)


# serve -------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server in the foreground; refuse a public bind that no key protects."""
    import uvicorn

    from cinegen.app import SETTING_ERRORS, create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = Settings(**overrides)
    if _open_to_anyone(settings):
        print(
            f"cinegen: refusing to listen on {settings.host} with no API key configured: anyone "
            "who can reach it could use it.\n  Create a key first:  cinegen keys create\n"
            "  or allow it anyway:  CINEGEN_ALLOW_PUBLIC_BIND=true",
            file=sys.stderr,
        )
        return 2
    logs.configure(settings.log_format, settings.log_level)
    try:
        app = create_app(settings)
    except SETTING_ERRORS as exc:  # a typo, no access, a bad cert
        print(f"cinegen: {exc}", file=sys.stderr)
        return 2
    _print_banner(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=None,  # uvicorn's records go to the root handler: redacted, with ids
        access_log=False,  # the app writes its own access line, with the request id
        timeout_graceful_shutdown=5,
    )
    return 0


def _open_to_anyone(settings: Settings) -> bool:
    """A non-loopback bind with no key, and the operator did not say that is fine."""
    db = local_database(settings)
    return (
        not _is_loopback(settings.host) and db.count_keys() == 0 and not settings.allow_public_bind
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _print_banner(settings: Settings) -> None:
    """Where it listens and two ways to try it, so a first run needs no documentation."""
    url = f"http://{settings.host}:{settings.port}"
    engines = "preview + diffusers" if settings.diffusers_registry else "preview"
    print(
        f"cinegen {_version()} on {url}  (data: {settings.data_dir.resolve()}, engines: {engines})"
    )
    print(f"  try: GEMINI_API_KEY=anything GOOGLE_GEMINI_BASE_URL={url} python your_veo_script.py")
    print(
        f"   or: curl -s {url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning "
        '-H \'Content-Type: application/json\' -d \'{"instances":[{"prompt":"a red fox at '
        "sunset\"}]}'",
        flush=True,
    )


def _version() -> str:
    from importlib.metadata import version

    return version("cinegen")


def local_database(settings: Settings) -> Database:
    """The settings' database, migrated: a first command on a fresh machine creates it."""
    from cinegen.store.db import Database

    db = Database(settings.resolved_database_url)
    db.migrate()
    return db


# models ------------------------------------------------------------------------------------


def cmd_models(_args: argparse.Namespace) -> int:
    """The catalog a server with these settings serves (the diffusers registry's models
    included), one model a line: id, engine, description."""
    from cinegen.core.catalog import Catalog
    from cinegen.engines.registry import build_engines

    catalog = Catalog()
    build_engines(Settings(), catalog)
    for model in catalog.rows():
        print(f"{model.id:34} {model.engine:8} {model.description}")
    return 0
