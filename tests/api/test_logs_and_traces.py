"""Request ids, JSON logs of a request and of its job, redaction, and one trace from the route
to the engine (cinegen/core/logs.py, cinegen/core/tracing.py, cinegen/api/request_context.py)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cinegen.core import logs, tracing
from cinegen.core.errors import EngineError
from tests.helpers import b64, create, png_bytes, text_request, wait_done
from tests.support.app import in_process, op_id
from tests.support.engines import ScriptedEngine
from tests.support.server import ServerProcess, create_key


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every log line of the process, as `CINEGEN_LOG_FORMAT=json` writes them."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    logs.configure("json", "INFO", stream=stream)
    yield stream
    for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
        root.removeHandler(handler)
    root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# X-Request-Id -----------------------------------------------------------------------------


def test_request_id_is_kept_echoed_made_or_replaced(tmp_path: Path) -> None:
    with in_process(tmp_path, workers=0) as app, app.client() as client:
        kept = client.get("/v1beta/models", headers={"X-Request-Id": "trace-me-42"})
        made = client.get("/v1beta/models")
        bad = client.get("/v1beta/models", headers={"X-Request-Id": "x" * 129})
        control = client.get("/v1beta/models", headers={"X-Request-Id": "a\tb"})
    assert kept.headers["x-request-id"] == "trace-me-42"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", control.headers["x-request-id"])
    assert len({made.headers["x-request-id"], bad.headers["x-request-id"]}) == 2
    assert kept.headers.get_list("x-request-id") == ["trace-me-42"]


def test_errors_carry_the_request_id_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with in_process(tmp_path, workers=0) as app, app.client() as client:
        monkeypatch.setattr(app.runtime.service, "list_page", _crash)
        missing = client.get("/nowhere", headers={"X-Request-Id": "r-404"})
        invalid = create(client, {"instances": "no"}, model="veo-3.1-generate-preview")
        crashed = client.get("/v1beta/operations", headers={"X-Request-Id": "r-500"})
    assert (missing.status_code, missing.headers["x-request-id"]) == (404, "r-404")
    assert invalid.status_code == 400 and invalid.headers["x-request-id"]
    assert crashed.status_code == 500, crashed.text
    assert crashed.json()["error"]["status"] == "INTERNAL"
    assert crashed.headers["x-request-id"] == "r-500"


def _crash(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("a bug")


# logs of a request and its job ------------------------------------------------------------


def test_a_failed_jobs_lines_are_found_by_its_operation_id(
    tmp_path: Path, json_lines: io.StringIO
) -> None:
    engine = ScriptedEngine(error=EngineError("the engine gave up"))
    with (
        in_process(tmp_path, workers=0, engines={"preview": engine}) as app,
        app.client() as client,
    ):
        created = create(client, text_request("a fox"), model="veo-3.1-generate-preview")
        assert created.status_code == 200, created.text
        request_id = created.headers["x-request-id"]
        op = op_id(created.json()["name"])
        app.run(op)
        polled = client.get(f"/v1beta/{created.json()['name']}")
    assert polled.json()["error"]["message"] == "the engine gave up"
    lines = parsed(json_lines)
    mine = [line for line in lines if line.get("operation_id") == op]
    failure = [line for line in mine if line["logger"] == "cinegen.worker"]
    assert failure and failure[0]["level"] == "WARNING"
    assert "the engine gave up" in failure[0]["message"]
    assert failure[0]["request_id"] == request_id  # the create's, kept with the operation
    access = [line for line in mine if line["logger"] == "cinegen.access"]
    assert [line["http"]["method"] for line in access] == ["POST", "GET"]
    assert access[0]["request_id"] == request_id
    assert access[0]["http"]["route"] == "/{version}/models/{model}:predictLongRunning"
    assert access[0]["http"]["status"] == 200


def test_no_key_and_no_payload_in_any_log_line(tmp_path: Path, json_lines: io.StringIO) -> None:
    image = b64(png_bytes(64, 64, square=(8, 8)))
    with in_process(tmp_path, workers=1) as app:
        key = app.add_key()
        body = text_request("a fox", durationSeconds=4)
        body["instances"][0]["image"] = {"bytesBase64Encoded": image, "mimeType": "image/png"}
        with app.client(headers={"x-goog-api-key": key}) as client:
            name = create(client, body).json()["name"]
            wait_done(client, name)
            client.get("/v1beta/operations/nope")  # a 404
            create(client, {"instances": [{"prompt": "x", "image": {"bytesBase64Encoded": 5}}]})
        with app.client() as client:
            client.get(f"/v1beta/{name}", params={"key": key})
            client.get("/v1beta/models", headers={"Authorization": f"Bearer {key}"})
            client.get("/v1beta/models", params={"key": key + "-wrong"})  # a refused key
        logging.getLogger("cinegen.test").info("a careless line: %s %s", key, image)
    text = json_lines.getvalue()
    lines = parsed(json_lines)
    assert len([line for line in lines if line["logger"] == "cinegen.access"]) >= 6
    assert key not in text
    assert image[:80] not in text
    assert all(line.get("request_id") for line in lines if line["logger"] == "cinegen.access")


# traces -----------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)


def test_a_create_and_its_job_form_one_trace(
    tmp_path: Path, spans: InMemorySpanExporter, json_lines: io.StringIO
) -> None:
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with in_process(tmp_path, workers=0) as app:
        with app.client() as client:
            created = client.post(
                "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                json=text_request("a fox"),
                headers={"traceparent": caller},
            )
            assert created.status_code == 200, created.text
        app.run(op_id(created.json()["name"]))
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    (route,) = by_name["POST /{version}/models/{model}:predictLongRunning"]
    (submit,) = by_name["cinegen.service.submit"]
    (job,) = by_name["cinegen.job"]
    render, encode, store = (
        by_name[name][0] for name in ("cinegen.engine.render", "cinegen.encode", "cinegen.store")
    )
    trace_id = int("0af7651916cd43dd8448eb211c80319c", 16)
    everything = [route, submit, job, render, encode, store]
    assert {span.context.trace_id for span in everything} == {trace_id}
    assert route.parent is not None and route.parent.span_id == int("b7ad6b7169203331", 16)
    assert submit.parent is not None and submit.parent.span_id == route.context.span_id
    assert job.parent is not None and job.parent.span_id == submit.context.span_id
    for step in (render, encode, store):
        assert step.parent is not None and step.parent.span_id == job.context.span_id
    assert route.attributes is not None and route.attributes["http.response.status_code"] == 200
    # the job's log lines name its span, so a line leads to its trace
    job_lines = [line for line in parsed(json_lines) if line.get("span_id")]
    assert all(line["trace_id"] == format(trace_id, "032x") for line in job_lines)


def test_without_a_caller_trace_a_new_one_starts(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    with in_process(tmp_path, workers=0) as app:
        with app.client() as client:
            created = create(client, text_request("a fox"))
        app.run(op_id(created.json()["name"]))
    finished = spans.get_finished_spans()
    assert len({span.context.trace_id for span in finished}) == 1
    roots = [span for span in finished if span.parent is None]
    assert [span.name for span in roots] == ["POST /{version}/models/{model}:predictLongRunning"]


def test_tracing_is_off_unless_the_variables_ask() -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.enabled()


# `cinegen serve` ---------------------------------------------------------------------------


def test_serve_writes_json_lines_without_keys(fresh_server: ServerProcess) -> None:
    """As an operator runs it: `CINEGEN_LOG_FORMAT=json`, uvicorn's records included."""
    fresh_server.env_extra.update({"CINEGEN_LOG_FORMAT": "json", "CINEGEN_WORKERS": "1"})
    key = create_key(fresh_server)
    fresh_server.start()
    image = b64(png_bytes(64, 64, square=(8, 8)))
    body = text_request("a fox")
    body["instances"][0]["image"] = {"bytesBase64Encoded": image, "mimeType": "image/png"}
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        created = client.post(
            "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
            json=body,
            params={"key": key},
            headers={"X-Request-Id": "serve-test-1"},
        )
        assert created.status_code == 200, created.text
        assert created.headers["x-request-id"] == "serve-test-1"
        client.headers["x-goog-api-key"] = key
        wait_done(client, created.json()["name"])
    fresh_server.stop()
    text = fresh_server.log()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    create_line = next(line for line in lines if line.get("request_id") == "serve-test-1")
    assert create_line["operation_id"] == op_id(created.json()["name"])
    assert key not in text and image[:80] not in text


def test_the_variables_start_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    try:
        assert tracing.configure_from_env()
        assert tracing.enabled()
    finally:
        tracing.install(None)
    assert tracing.traceparent() is None
