"""Optional OpenTelemetry traces: route → service → worker → engine render, encode, store.

Off unless the standard variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
`OTEL_TRACES_EXPORTER` other than `none`) and the `[otel]` extra is installed; off, every
helper here costs one global read. The OTLP exporter reads the other `OTEL_*` variables itself
(headers, protocol, timeout; `OTEL_SERVICE_NAME` names the service, `cinegen` by default).

The queue carries the trace: `carry` stores the W3C `traceparent` of the submitting span (and
the request id) with the operation, and the worker's job span, in whichever process runs it,
starts as that span's child (`job_scope`, `job_started`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from cinegen.core import logs

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from cinegen.core.operation import Operation

log = logging.getLogger("cinegen.tracing")

P = ParamSpec("P")
R = TypeVar("R")

CONTEXT_KEY = "_context"  # where the operation's request dict keeps what `carry` returned

_tracer: Tracer | None = None
_job: ContextVar[ExitStack | None] = ContextVar("cinegen_job", default=None)


def enabled() -> bool:
    return _tracer is not None


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """The standard variables ask for traces."""
    env = os.environ if environ is None else environ
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(exporter or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def configure_from_env() -> bool:
    """Start tracing when the variables ask for it and the SDK is installed; True if on.
    Without the SDK a warning says what to install, and the server runs without traces."""
    if not wanted() or enabled():
        return enabled()
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_* variables are set but OpenTelemetry is not: pip install 'cinegen[otel]'"
        )
        return False
    exporter = _exporter(os.environ.get("OTEL_TRACES_EXPORTER", "otlp"))
    if exporter is None:
        return False
    provider = SdkProvider(resource=Resource.create({"service.name": "cinegen"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return True


def _exporter(name: str) -> Any:
    """The exporter `OTEL_TRACES_EXPORTER` names (`otlp`, the default, or `console`); OTLP
    over gRPC when `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` says `grpc`, else HTTP."""
    name = (name.split(",")[0].strip().lower()) or "otlp"
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        log.warning("OTEL_TRACES_EXPORTER=%s is not supported (otlp, console): no traces", name)
        return None
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    try:
        if protocol.strip().lower() == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
    except ImportError:
        log.warning("the OTLP exporter is not installed: pip install 'cinegen[otel]'")
        return None
    return OTLPSpanExporter()


def install(provider: TracerProvider | None) -> None:
    """Trace with `provider` from now on (None: stop). Tests give one with an in-memory
    exporter; the global provider of the OpenTelemetry API is left alone."""
    global _tracer
    _tracer = provider.get_tracer("cinegen") if provider is not None else None
    logs.trace_ids = _current_ids if provider is not None else None


def _current_ids() -> tuple[str, str] | None:
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def span(
    name: str, attributes: Mapping[str, Any] | None = None, parent: str | None = None
) -> AbstractContextManager[Span | None]:
    """A span around a block (current span's child, or `parent`'s: a W3C traceparent);
    nothing when tracing is off."""
    if _tracer is None:
        return nullcontext()
    return _span(_tracer, name, attributes, parent)


@contextmanager
def _span(
    tracer: Tracer, name: str, attributes: Mapping[str, Any] | None, parent: str | None
) -> Iterator[Span]:
    context = _extract({"traceparent": parent}) if parent else None
    with tracer.start_as_current_span(name, context=context, attributes=attributes) as current:
        yield current


def server_span(
    name: str, headers: Mapping[str, str], attributes: Mapping[str, Any]
) -> AbstractContextManager[Span | None]:
    """The span of one HTTP request: a child of the caller's `traceparent` when it sent one."""
    if _tracer is None:
        return nullcontext()
    from opentelemetry.trace import SpanKind

    return _tracer.start_as_current_span(
        name, context=_extract(headers), kind=SpanKind.SERVER, attributes=attributes
    )


def _extract(carrier: Mapping[str, str]) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(carrier)


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorates a function so that each call is a span named `name` (a plain call when
    tracing is off)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if _tracer is None:
                return fn(*args, **kwargs)
            with _tracer.start_as_current_span(name):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def traceparent() -> str | None:
    """The current span as a W3C `traceparent` header value; None without one."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


# across the queue -------------------------------------------------------------------------


def carry(operation_id: str) -> dict[str, str]:
    """What a new operation keeps for its job: the request id and the current traceparent.
    Names the operation in the current request's log context as well."""
    logs.bind_operation(operation_id)
    ctx = logs.current()
    kept = {"request_id": ctx.request_id if ctx is not None else None, "traceparent": traceparent()}
    return {k: v for k, v in kept.items() if v}


def job_scope(run: Callable[P, R]) -> Callable[P, R]:
    """Decorates the function that runs one job (its first argument the operation id): its
    log lines carry that id, and the span `job_started` opens ends with it."""

    @functools.wraps(run)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = logs.bind(operation_id=str(args[0]) if args else None)
        stack = ExitStack()
        job = _job.set(stack)
        try:
            with stack:
                return run(*args, **kwargs)
        finally:
            _job.reset(job)
            logs.unbind(token)

    return wrapper


def job_started(op: Operation) -> None:
    """In a `job_scope`, once the job holds its operation: the log lines take the request id
    that created it, and the job's span starts as the child of the submitting span."""
    stored = op.request.get(CONTEXT_KEY) or {}
    ctx = logs.current()
    if ctx is not None:
        ctx.request_id = stored.get("request_id")
    stack = _job.get()
    if stack is not None and _tracer is not None:
        attributes = {"cinegen.operation_id": op.id, "cinegen.model": op.model}
        stack.enter_context(span("cinegen.job", attributes, parent=stored.get("traceparent")))
