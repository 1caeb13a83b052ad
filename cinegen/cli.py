"""`cinegen serve | keys | models`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from cinegen.settings import Settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cinegen.app import create_app
    from cinegen.store.db import Database

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = Settings(**overrides)
    db = Database(settings.resolved_database_url)
    db.migrate()
    if not _is_loopback(settings.host) and db.count_keys() == 0 and not settings.allow_public_bind:
        print(
            f"cinegen: refusing to listen on {settings.host} with no API key configured: anyone "
            "who can reach it could use it.\n  Create a key first:  cinegen keys create\n"
            "  or allow it anyway:  CINEGEN_ALLOW_PUBLIC_BIND=true",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    url = f"http://{settings.host}:{settings.port}"
    print(
        f"cinegen {_version()} on {url}  (data: {settings.data_dir.resolve()}, engine: "
        f"{settings.engine})"
    )
    print(f"  try: GEMINI_API_KEY=anything GOOGLE_GEMINI_BASE_URL={url} python your_veo_script.py")
    print(
        f"   or: curl -s {url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning "
        '-H \'Content-Type: application/json\' -d \'{"instances":[{"prompt":"a red fox at '
        "sunset\"}]}'",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from cinegen.api.auth import create_key
    from cinegen.store.db import Database

    db = Database(Settings().resolved_database_url)
    db.migrate()
    if args.keys_command == "create":
        key_id, key = create_key(db, args.name or "")
        print(key)
        print(
            f"(key id {key_id}; stored hashed — this is the only time it is shown)", file=sys.stderr
        )
    elif args.keys_command == "list":
        for row in db.list_keys():
            print(f"{row['id']}  {row['create_time']:%Y-%m-%d %H:%M}  {row['name']}")
    elif args.keys_command == "delete" and not db.delete_key(args.key_id):
        print(f"cinegen: no key with id {args.key_id}", file=sys.stderr)
        return 1
    return 0


def cmd_models(_args: argparse.Namespace) -> int:
    from cinegen.core.catalog import MODELS

    for model in MODELS.values():
        print(f"{model.id:34} {model.engine:8} {model.description}")
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("cinegen")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cinegen", description="A Veo-compatible video server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the HTTP server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it")
    create.add_argument("--name", default="")
    keys_sub.add_parser("list", help="list key ids")
    delete = keys_sub.add_parser("delete", help="delete a key by id")
    delete.add_argument("key_id")
    keys.set_defaults(func=cmd_keys)
    models = sub.add_parser("models", help="list the catalog")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
