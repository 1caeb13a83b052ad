"""The `cinegen` parser and dispatch: each command module adds its own subparsers."""

from __future__ import annotations

import argparse

from cinegen.cli import (
    generate,
    migrate,
    operations,
    serve,
    usage,
    verify,
    warmup,
    webhooks,
    worker,
)


def build_parser() -> argparse.ArgumentParser:
    """Every command, in the order `cinegen --help` lists them."""
    parser = argparse.ArgumentParser(prog="cinegen", description="A Veo-compatible video server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_parsers(sub)
    worker.add_parser(sub)
    generate.add_parser(sub)
    operations.add_parser(sub)
    usage.add_parser(sub)
    verify.add_parser(sub)
    webhooks.add_parser(sub)
    warmup.add_parser(sub)
    migrate.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run the chosen command, return its exit code (argparse exits 2 on bad usage)."""
    args = build_parser().parse_args(argv)
    return args.func(args)
