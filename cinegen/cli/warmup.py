"""`cinegen warmup`: load (and, with compile on, compile) every pipeline of the diffusers
registry in the foreground, printing per-entry load and first-call seconds.

Useful to fill the compile and checkpoint caches before a deployment, and to measure what a
cold start costs; the server does the same at start-up with CINEGEN_DIFFUSERS_WARMUP=true.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cinegen.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    warmup = sub.add_parser("warmup", help="load and compile the diffusers pipelines, timed")
    warmup.add_argument(
        "--registry", type=Path, default=None, help="default: CINEGEN_DIFFUSERS_REGISTRY"
    )
    warmup.set_defaults(func=cmd_warmup)


def cmd_warmup(args: argparse.Namespace) -> int:
    """0 when every entry that fits in max_loaded warmed; 1 on the first failure, 2 when no
    registry is configured or it is unusable."""
    from cinegen.core.catalog import Catalog
    from cinegen.engines.diffusers import RegistryError, build_engine

    overrides = {"diffusers_registry": args.registry} if args.registry else {}
    settings = Settings(**overrides)
    if settings.diffusers_registry is None:
        print(
            "cinegen warmup: no registry (--registry or CINEGEN_DIFFUSERS_REGISTRY).",
            file=sys.stderr,
        )
        return 2
    try:
        engine = build_engine(settings, Catalog())
    except RegistryError as exc:
        print(f"cinegen warmup: {exc}", file=sys.stderr)
        return 2
    warm, skipped = engine.warm_plan()
    for entry in skipped:
        print(
            f"{entry.name:24} skipped: over CINEGEN_DIFFUSERS_MAX_LOADED={settings.diffusers_max_loaded}"
        )
    for entry in warm:
        try:
            result = engine.warm(entry)
        except Exception as exc:
            print(f"{entry.name:24} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        print(
            f"{result.entry:24} load {result.load_s:7.2f} s  first call {result.call_s:7.2f} s"
            f"  ({result.shape} frames, 1 step)",
            flush=True,
        )
    return 0
