"""The Prometheus metrics of the server: every metric object, defined once, and the text
exposition of `/metrics` (the `prometheus-client` library).

Metric objects live here, below every layer that records them (the api's HTTP middleware, the
service's operation counts, the worker's job timings), so no layer reaches up for them.

Single process by default. With `PROMETHEUS_MULTIPROC_DIR` set (before the server starts:
prometheus-client reads it at import) every process writes its values to files in that
directory and `/metrics` sums them (`MultiProcessCollector`), so several processes serving one
port (uvicorn `--workers`, gunicorn) show one set of numbers. That directory must be emptied
before the processes start.

Values that live in the database (queue depth, the age of the oldest queued job, the lag of
progress reports) are read at scrape time, in one grouped query, by the caller of `exposition`
(service/health.py builds them with `database_families`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ParamSpec, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from cinegen.core.operation import Operation

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

disable_created_metrics()  # no `_created` timestamp series beside every counter
REGISTRY = CollectorRegistry(auto_describe=True)
if not os.environ.get(MULTIPROC_ENV):  # per-process values mean nothing summed over processes
    ProcessCollector(registry=REGISTRY)

# Latency of API requests: a poll answers in about a millisecond, a download can take minutes.
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Job steps: the preview engine takes a second, a GPU render of 1080p many minutes.
_JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_JOB_LABELS = ("engine", "mode", "resolution")

HTTP_REQUEST_SECONDS = Histogram(
    "cinegen_http_request_duration_seconds",
    "HTTP requests by route template, method and status: time to the last byte sent "
    "(the _count series counts the requests).",
    ("route", "method", "status"),
    buckets=_HTTP_BUCKETS,
    registry=REGISTRY,
)
OPERATIONS_CREATED = Counter(
    "cinegen_operations_created",
    "Operations created (queued), by model and mode.",
    ("model", "mode"),
    registry=REGISTRY,
)
OPERATIONS_FINISHED = Counter(
    "cinegen_operations_finished",
    "Operations that ended, by model, mode and final state.",
    ("model", "mode", "state"),
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "cinegen_job_duration_seconds",
    "A job from the start of its first render to its last sample stored, for jobs that "
    "rendered every sample.",
    _JOB_LABELS,
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
RENDER_SECONDS = Histogram(
    "cinegen_engine_render_seconds",
    "Engine time of one sample: the engine's render call.",
    _JOB_LABELS,
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
ENCODE_SECONDS = Histogram(
    "cinegen_encode_seconds",
    "Encoding one sample to MP4.",
    _JOB_LABELS,
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
STORE_SECONDS = Histogram(
    "cinegen_store_seconds",
    "Storing one sample's MP4 in the blob store.",
    _JOB_LABELS,
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "cinegen_webhook_deliveries",
    "Webhook delivery attempts by result (delivered, retried, failed).",
    ("result",),
    registry=REGISTRY,
)
PROMPTS_BLOCKED = Counter(
    "cinegen_prompts_blocked",
    "Prompts the prompt policy refused, by source (blocklist, moderation).",
    ("source",),
    registry=REGISTRY,
)
SAMPLES_FILTERED = Counter(
    "cinegen_samples_filtered",
    "Generated samples dropped before they were stored, by reason (person: "
    "personGeneration dont_allow and a person detected).",
    ("reason",),
    registry=REGISTRY,
)
WORKERS_ALIVE = Gauge(
    "cinegen_workers_alive",
    "Worker threads running in this process (summed over processes).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
JOBS_IN_FLIGHT = Gauge(
    "cinegen_jobs_in_flight",
    "Jobs a worker of this process is running now (summed over processes).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
GPU_MEMORY = Gauge(
    "cinegen_gpu_memory_bytes",
    "GPU memory held by tensors now (torch.cuda.memory_allocated), per device.",
    ("device",),
    registry=REGISTRY,
    multiprocess_mode="liveall",
)
GPU_MEMORY_PEAK = Gauge(
    "cinegen_gpu_memory_peak_bytes",
    "The most GPU memory held by tensors since the process started or the engine reset "
    "the peak (torch.cuda.max_memory_allocated), per device.",
    ("device",),
    registry=REGISTRY,
    multiprocess_mode="liveall",
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HTTP_CHILDREN: dict[tuple[str, str, int], Any] = {}  # labels() costs more than an observe
_HTTP_LOCK = threading.Lock()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered; `route` is the route's template, never the raw path."""
    if method not in _METHODS:
        method = "other"
    key = (route, method, status)
    child = _HTTP_CHILDREN.get(key)
    if child is None:
        with _HTTP_LOCK:
            child = _HTTP_CHILDREN[key] = HTTP_REQUEST_SECONDS.labels(route, method, str(status))
    child.observe(seconds)


def operation_created(model: str, mode: str) -> None:
    OPERATIONS_CREATED.labels(model, mode).inc()


def operation_finished(op: Operation, mode: str) -> None:
    """`op` as it ended (its state is the final one); `mode` its request's."""
    OPERATIONS_FINISHED.labels(op.model, mode, op.state.value).inc()


def prompt_blocked(source: str) -> None:
    PROMPTS_BLOCKED.labels(source).inc()


def sample_filtered(reason: str) -> None:
    SAMPLES_FILTERED.labels(reason).inc()


P = ParamSpec("P")
R = TypeVar("R")


def counting_alive(target: Callable[P, R]) -> Callable[P, R]:
    """`target` (a worker thread's loop) counted in `cinegen_workers_alive` while it runs."""

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with WORKERS_ALIVE.track_inprogress():
            return target(*args, **kwargs)

    return run


class JobTimings:
    """The stopwatch of one job, labelled by engine, mode and resolution: each call observes
    the time since the previous one (`lap` starts a sample's first step), so the worker marks
    the end of each step with one line."""

    def __init__(self, engine: str, mode: str, resolution: str) -> None:
        labels = (engine, mode, resolution)
        self._render = RENDER_SECONDS.labels(*labels)
        self._encode = ENCODE_SECONDS.labels(*labels)
        self._store = STORE_SECONDS.labels(*labels)
        self._job = JOB_SECONDS.labels(*labels)
        self.started = self._mark = time.perf_counter()

    def _lap(self) -> float:
        now = time.perf_counter()
        elapsed, self._mark = now - self._mark, now
        return elapsed

    def lap(self) -> None:
        """A sample's render starts now."""
        self._lap()

    def rendered(self) -> None:
        self._render.observe(self._lap())
        sample_gpu_memory()

    def encoded(self) -> None:
        self._encode.observe(self._lap())

    def stored(self) -> None:
        self._store.observe(self._lap())

    def done(self) -> None:
        """Every sample rendered, encoded and stored."""
        self._job.observe(time.perf_counter() - self.started)


def sample_gpu_memory() -> None:
    """GPU memory in use and its peak, when this process has initialised CUDA through torch
    (the diffusers engine). torch is never imported here: a process without it has no GPU
    memory to report, and importing it would cost seconds and memory."""
    torch: Any = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is None or not cuda.is_available() or not cuda.is_initialized():
            return
        for index in range(cuda.device_count()):
            device = f"cuda:{index}"
            GPU_MEMORY.labels(device).set(cuda.memory_allocated(index))
            GPU_MEMORY_PEAK.labels(device).set(cuda.max_memory_allocated(index))
    except Exception:  # a broken driver must not break a scrape or a job
        return


@dataclass(frozen=True)
class QueueRow:
    """One (model, state) group of unfinished operations, as the database counts them."""

    model: str
    state: str  # queued | running
    count: int
    oldest_create: datetime
    oldest_update: datetime


def database_families(
    rows: Iterable[QueueRow], models: Sequence[str], now: datetime
) -> list[Metric]:
    """Queue depth, oldest queued age, running operations and progress-report lag by model,
    from the database's counts; every model in `models` has a sample (0 when idle)."""
    depth = GaugeMetricFamily(
        "cinegen_queue_depth", "Operations queued, by model (all processes).", labels=["model"]
    )
    oldest = GaugeMetricFamily(
        "cinegen_queue_oldest_age_seconds",
        "Age of the oldest queued operation, by model (0 when none is queued).",
        labels=["model"],
    )
    running = GaugeMetricFamily(
        "cinegen_operations_running",
        "Operations running, by model (all processes).",
        labels=["model"],
    )
    lag = GaugeMetricFamily(
        "cinegen_progress_report_lag_seconds",
        "The longest time any running operation of the model has gone without a progress "
        "report or lease renewal (0 when none runs).",
        labels=["model"],
    )
    by_key = {(row.model, row.state): row for row in rows}
    for model in sorted(set(models) | {model for model, _ in by_key}):
        queued, active = by_key.get((model, "queued")), by_key.get((model, "running"))
        depth.add_metric([model], queued.count if queued else 0)
        oldest.add_metric([model], _age(now, queued.oldest_create) if queued else 0.0)
        running.add_metric([model], active.count if active else 0)
        lag.add_metric([model], _age(now, active.oldest_update) if active else 0.0)
    return [depth, oldest, running, lag]


def _age(now: datetime, then: datetime) -> float:
    return max((now - then).total_seconds(), 0.0)


class _Families:
    """A collector that hands on already-built families."""

    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families()


def _nothing() -> Iterable[Metric]:
    return ()


def exposition(extra: Callable[[], Iterable[Metric]] = _nothing) -> bytes:
    """The text format of every metric: this process's (or, in multiprocess mode, every
    process's) plus `extra`, the families read at scrape time."""
    sample_gpu_memory()
    scrape = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(scrape)
    else:
        scrape.register(REGISTRY)
    scrape.register(_Families(extra))
    return generate_latest(scrape)


class _MetricsHandler(BaseHTTPRequestHandler):
    """GET /metrics, the text format of this process's metrics; anything else 404."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        body = exposition()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        """Scrapes are not logged (one every few seconds would drown the worker's log)."""


def serve_metrics(host: str, port: int) -> ThreadingHTTPServer:
    """`GET /metrics` on `host:port` from a daemon thread: for a process without the API's
    HTTP server (`cinegen worker`), whose job timings, finished counts and GPU memory exist
    only in it. OSError when the address cannot be bound; port 0 picks a free one."""
    server = ThreadingHTTPServer((host, port), _MetricsHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="cinegen-metrics", daemon=True).start()
    return server
