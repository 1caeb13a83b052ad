"""`cinegen worker`: run jobs taken from the broker (scale-out; README "Workers and the broker").

The worker builds the server's runtime without HTTP (the same database, blob store and engines
as `cinegen serve`, from the same settings) and consumes the broker queues of its models, one
per model: `cinegen.<model id>`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from cinegen.core import logs, metrics
from cinegen.settings import Settings

if TYPE_CHECKING:
    from cinegen.api.runtime import Runtime

log = logging.getLogger("cinegen.worker")

HELP = """\
Run jobs from the broker (CINEGEN_BROKER_URL, e.g. redis://host:6379/0) on this machine: the
same database (CINEGEN_DATABASE_URL) and blob store (CINEGEN_BLOB_URL) as the API nodes.

Each model has a queue of its own, cinegen.<model id>; a worker takes only the jobs of the
models it serves (--models), so a GPU box keeps its pipeline loaded and warm.

One process per GPU is the rule. Pin a worker to a GPU with
  CUDA_VISIBLE_DEVICES=1 cinegen worker ...
or CINEGEN_DIFFUSERS_DEVICE=cuda:1 cinegen worker ...

Besides its jobs, every worker re-queues the jobs of workers that died or hung (their lease
expired; CINEGEN_LEASE_SECONDS, at most CINEGEN_MAX_ATTEMPTS runs) and re-sends operations
queued in the database but not claimed for CINEGEN_RECONCILE_GRACE_SECONDS (a broker that lost
its data). SIGTERM lets running jobs end first.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser(
        "worker",
        help="run jobs from the broker (scale-out)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--models",
        default="",
        metavar="A,B",
        help="model ids whose jobs to take, comma-separated (default: every model this "
        "worker's engines serve; see `cinegen models`)",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="jobs at once in this process (default 1; threads above 1)",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve GET /metrics (Prometheus text: this worker's job timings, finished "
        "operations, jobs in flight, GPU memory) on this port (default: none)",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address of --metrics-port (default 127.0.0.1; nothing guards it, so bind "
        "it only where the scraper alone can reach it)",
    )
    worker.set_defaults(func=cmd_worker)


def served_models(rt: Runtime) -> list[str]:
    """Every model of the catalog whose engine this process runs."""
    return [row.id for row in rt.catalog.rows() if row.engine in rt.jobs.engines]


def chosen_models(rt: Runtime, asked: str) -> list[str]:
    """The models of `--models`, each checked to be one this worker serves; all by default.
    Raises ValueError naming the first that is not."""
    served = served_models(rt)
    if not asked.strip():
        return served
    models = [name.strip() for name in asked.split(",") if name.strip()]
    for model in models:
        if model not in served:
            raise ValueError(
                f"model {model!r} is not served by this worker's engines; it serves: "
                + ", ".join(served)
            )
    return models


def cmd_worker(args: argparse.Namespace) -> int:
    """Consume the broker until stopped; exit 2 without a broker, with a bad --models or a
    setting to fix (the blob store, the C2PA certificate)."""
    settings = Settings()
    if not settings.broker_url:
        print(
            "cinegen worker: no broker configured; set CINEGEN_BROKER_URL (e.g. "
            "redis://127.0.0.1:6379/0), the same on the API nodes",
            file=sys.stderr,
        )
        return 2
    if args.concurrency < 1:
        print("cinegen worker: --concurrency must be 1 or more", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    from cinegen.app import SETTING_ERRORS, build_runtime
    from cinegen.jobs.celery_queue import CeleryQueue, queue_name, run_worker

    try:
        rt = build_runtime(settings)
    except SETTING_ERRORS as exc:  # a typo, no access, a bad cert
        print(f"cinegen worker: {exc}", file=sys.stderr)
        return 2
    try:
        models = chosen_models(rt, args.models)
    except ValueError as exc:
        print(f"cinegen worker: {exc}", file=sys.stderr)
        return 2
    if not isinstance(rt.queue, CeleryQueue):  # build_runtime picks it from broker_url
        raise TypeError("a broker URL must give the runtime a CeleryQueue")
    try:
        rt.service.files.sweep_orphans()  # what a killed worker on this machine left
    except Exception:
        log.exception("the start-up sweep of orphaned files failed; going on")
    if args.metrics_port is not None:
        try:
            server = metrics.serve_metrics(args.metrics_host, args.metrics_port)
        except OSError as exc:
            print(
                f"cinegen worker: cannot serve metrics on {args.metrics_host}:"
                f"{args.metrics_port}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
        address = f"{args.metrics_host}:{server.server_port}"
        print(f"cinegen worker: metrics on http://{address}/metrics", flush=True)
    print(
        f"cinegen worker: {len(models)} model(s), concurrency {args.concurrency}, "
        f"queues {', '.join(queue_name(m) for m in models)}",
        flush=True,
    )
    run_worker(settings, rt.jobs, rt.queue, models, args.concurrency)
    return 0
