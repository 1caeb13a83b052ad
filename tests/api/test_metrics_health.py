"""`/metrics`, `/healthz`, `/readyz` (issue 27): values read back with prometheus-client's own
parser and checked against what the test did, readiness failing for real (a database file
that is gone, a blob store that cannot be written), and who may read `/metrics` per setting.

Metrics are process-wide, so every check is a difference between two scrapes of the same app.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cinegen.api import auth
from cinegen.api.health import UNMATCHED
from cinegen.core import metrics
from cinegen.store.blobs import LocalBlobStore
from cinegen.store.db import Database
from tests.helpers import b64, create, png_bytes, submit, text_request
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.server import REPO, ServerProcess

MODEL = "veo-3.1-generate-preview"
POLL_ROUTE = "/{version}/models/{model}/operations/{op_id}"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_answers_ok(fresh_app: InProcessServer) -> None:
    with fresh_app.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_each_check(fresh_app: InProcessServer) -> None:
    with fresh_app.client() as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["database"] == {"status": "ok"}
    assert checks["blobs"] == {"status": "ok"}
    assert checks["queue"] == {"status": "ok", "workers": 0, "alive": 0}
    probes = fresh_app.settings.resolved_blob_dir / "health"
    assert not probes.exists() or not any(probes.iterdir())  # the probe blob is deleted


def test_readyz_is_503_naming_an_unreachable_database(
    fresh_app: InProcessServer, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    db = Database(f"sqlite:///{gone / 'cinegen.db'}")  # makes the directory
    shutil.rmtree(gone)  # ... which is gone before SQLite opens the file
    runtime, kept = fresh_app.runtime, fresh_app.runtime.db
    runtime.db = db
    try:
        with fresh_app.client() as client:
            response = client.get("/readyz")
    finally:
        runtime.db = kept
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["status"] == "UNAVAILABLE"
    assert body["error"]["message"] == "Not ready: database."
    assert body["checks"]["database"] == {"status": "error", "error": "OperationalError"}
    assert body["checks"]["blobs"] == {"status": "ok"}
    # /metrics still answers, without what only the database knows
    runtime.db = db
    try:
        with fresh_app.client() as client:
            samples = scrape(client)
    finally:
        runtime.db = kept
    assert ("cinegen_queue_depth", (("model", MODEL),)) not in samples
    assert any(name == "cinegen_http_request_duration_seconds_count" for name, _ in samples)


def test_readyz_is_503_naming_an_unwritable_blob_store(
    fresh_app: InProcessServer, tmp_path: Path
) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    shutil.rmtree(root)
    root.write_bytes(b"")  # a file where the store's directory was: no write can succeed
    files, kept = fresh_app.runtime.service.files, fresh_app.runtime.service.files.blobs
    files.blobs = store
    try:
        with fresh_app.client() as client:
            response = client.get("/readyz")
    finally:
        files.blobs = kept
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["message"] == "Not ready: blobs."
    assert body["checks"]["blobs"]["status"] == "error"
    assert body["checks"]["database"] == {"status": "ok"}


def test_metrics_count_what_the_test_did(fresh_app: InProcessServer) -> None:
    with fresh_app.client() as client:
        before = scrape(client)
        names = [submit(client, text_request(f"metrics {i}")) for i in range(3)]
        queued = scrape(client)
        fresh_app.run(op_id(names[0]))  # rendered, encoded, stored: succeeded
        assert client.post(f"/v1beta/{names[1]}:cancel").status_code == 200
        for _ in range(2):
            assert client.get(f"/v1beta/{names[2]}").status_code == 200
        assert client.get("/no/such/route/abc123").status_code == 404
        after = scrape(client)

    created = ("cinegen_operations_created_total", {"model": MODEL, "mode": "text"})
    assert value(queued, created[0], **created[1]) - value(before, created[0], **created[1]) == 3
    assert value(queued, "cinegen_queue_depth", model=MODEL) == 3
    assert value(queued, "cinegen_queue_oldest_age_seconds", model=MODEL) >= 0
    assert value(after, "cinegen_queue_depth", model=MODEL) == 1
    assert value(after, "cinegen_queue_depth", model="veo-2.0-generate-001") == 0  # idle model

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for state in ("succeeded", "cancelled"):
        assert (
            moved("cinegen_operations_finished_total", model=MODEL, mode="text", state=state) == 1
        )
    job = {"engine": "preview", "mode": "text", "resolution": "720p"}
    for name in ("job_duration", "engine_render", "encode", "store"):
        assert moved(f"cinegen_{name}_seconds_count", **job) == 1, name
        assert moved(f"cinegen_{name}_seconds_sum", **job) > 0, name

    poll = {"route": POLL_ROUTE, "method": "GET", "status": "200"}
    assert moved("cinegen_http_request_duration_seconds_count", **poll) == 2
    unmatched = {"route": UNMATCHED, "method": "GET", "status": "404"}
    assert moved("cinegen_http_request_duration_seconds_count", **unmatched) == 1
    routes = {dict(labels).get("route", "") for _, labels in after}
    assert not any(op_id(names[2]) in route or "abc123" in route for route in routes)


def test_running_jobs_and_progress_lag_come_from_the_database(fresh_app: InProcessServer) -> None:
    with fresh_app.client() as client:
        name = submit(client, text_request("lag"))
        assert fresh_app.runtime.service.claim(op_id(name)) is not None  # running, no worker
        samples = scrape(client)
    assert value(samples, "cinegen_operations_running", model=MODEL) == 1
    assert value(samples, "cinegen_queue_depth", model=MODEL) == 0
    assert 0 <= value(samples, "cinegen_progress_report_lag_seconds", model=MODEL) < 60


def test_workers_alive_and_jobs_in_flight(tmp_path: Path) -> None:
    before = metrics.REGISTRY.get_sample_value("cinegen_workers_alive") or 0.0
    with in_process(tmp_path / "app", workers=2) as server, server.client() as client:
        samples = scrape(client)
        assert value(samples, "cinegen_workers_alive") - before == 2
        assert value(samples, "cinegen_jobs_in_flight") >= 0
        assert client.get("/readyz").json()["checks"]["queue"]["alive"] >= 2
    assert (metrics.REGISTRY.get_sample_value("cinegen_workers_alive") or 0.0) == before


@contextmanager
def client_from(server: InProcessServer, host: str) -> Iterator[httpx.Client]:
    """A client whose requests reach the app with `host` as the peer address."""
    transport = httpx.ASGITransport(app=server.app, client=(host, 40000))

    class Portal(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            body = request.read()

            async def send() -> tuple[int, httpx.Headers, bytes]:
                forwarded = httpx.Request(
                    request.method, request.url, headers=request.headers, content=body
                )
                response = await transport.handle_async_request(forwarded)
                return response.status_code, response.headers, await response.aread()

            status, headers, content = server.portal.call(send)
            return httpx.Response(status, headers=headers, content=content)

    with httpx.Client(transport=Portal(), base_url=server.url) as client:
        yield client


def test_metrics_access_follows_the_setting(
    fresh_app: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "_CACHE_SECONDS", 0.0)  # a key made below counts at once
    settings = fresh_app.runtime.settings
    assert settings.metrics == "loopback"
    with client_from(fresh_app, "127.0.0.1") as local, client_from(fresh_app, "203.0.113.9") as far:
        assert local.get("/metrics").status_code == 200
        refused = far.get("/metrics")
        assert refused.status_code == 403
        assert refused.json()["error"]["status"] == "PERMISSION_DENIED"
        assert "CINEGEN_METRICS" in refused.json()["error"]["message"]
        assert far.get("/healthz").status_code == 200  # health is never guarded
        assert far.get("/readyz").status_code == 200

        settings.metrics = "open"
        assert far.get("/metrics").status_code == 200

        settings.metrics = "admin"
        assert far.get("/metrics").status_code == 403  # no key exists at all
        key = fresh_app.add_key()
        admin = auth.create_key(fresh_app.db, "ops", admin=True)[1]
        assert far.get("/metrics").status_code == 401
        assert far.get("/metrics", headers={"x-goog-api-key": "wrong"}).status_code == 403
        plain = far.get("/metrics", headers={"x-goog-api-key": key})
        assert plain.status_code == 403
        assert "admin API key" in plain.json()["error"]["message"]
        assert far.get("/metrics", headers={"x-goog-api-key": admin}).status_code == 200

        settings.metrics = "off"
        gone = local.get("/metrics")
        assert gone.status_code == 404
        assert gone.json()["error"]["status"] == "NOT_FOUND"


def test_metrics_off_times_no_request(tmp_path: Path) -> None:
    series = ("cinegen_http_request_duration_seconds_count", {"route": "/healthz"})
    labels = {**series[1], "method": "GET", "status": "200"}
    before = metrics.REGISTRY.get_sample_value(series[0], labels) or 0.0
    with in_process(tmp_path / "app", workers=0, metrics="off") as server, server.client() as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/metrics").status_code == 404
    assert (metrics.REGISTRY.get_sample_value(series[0], labels) or 0.0) == before


def test_gpu_memory_is_read_only_from_an_initialised_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        is_initialized=lambda: True,
        device_count=lambda: 1,
        memory_allocated=lambda index: 123 * 2**20,
        max_memory_allocated=lambda index: 456 * 2**20,
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    samples = parse(metrics.exposition().decode())
    assert value(samples, "cinegen_gpu_memory_bytes", device="cuda:0") == 123 * 2**20
    assert value(samples, "cinegen_gpu_memory_peak_bytes", device="cuda:0") == 456 * 2**20


def test_metrics_never_import_torch() -> None:
    code = (
        "import sys; from cinegen.core import metrics; metrics.exposition(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_multiprocess_mode_sums_the_processes(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, what two processes counted is one number in a third's
    exposition."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from cinegen.core import metrics; metrics.operation_created('m', 'text')"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], cwd=REPO, env=env, check=True)
    show = "from cinegen.core import metrics; print(metrics.exposition().decode())"
    out = subprocess.run(
        [sys.executable, "-c", show], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    samples = parse(out.stdout)
    assert value(samples, "cinegen_operations_created_total", model="m", mode="text") == 2


def test_a_real_server_serves_metrics_to_loopback(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url) as client:
        assert create(client, text_request("socket")).status_code == 200
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert json.loads(ready.text)["checks"]["queue"]["alive"] >= 1
        samples = scrape(client)
    assert value(samples, "cinegen_operations_created_total", model=MODEL, mode="text") == 1
    assert value(samples, "cinegen_workers_alive") >= 1
    assert value(samples, "process_resident_memory_bytes") > 0


def test_the_grafana_dashboard_queries_only_served_metrics(fresh_app: InProcessServer) -> None:
    """Every metric a panel of deploy/grafana/cinegen.json asks for is one /metrics serves
    (a renamed metric would leave a panel empty without this)."""
    dashboard = json.loads((REPO / "deploy" / "grafana" / "cinegen.json").read_text())
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    asked = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"\b((?:cinegen|process)_[a-z_]+)\b", expr)
    }
    with fresh_app.client() as client:
        served = {
            family.name for family in text_string_to_metric_families(client.get("/metrics").text)
        }
    assert asked <= served, asked - served
    assert {"cinegen_http_request_duration_seconds", "cinegen_queue_depth"} <= asked


def test_finished_operations_are_counted_by_their_mode(fresh_app: InProcessServer) -> None:
    """The mode label of a finished operation is its request's (here image-to-video), as
    the created counter's is; the stored request keeps no `mode` field to read it from."""
    image = {"bytesBase64Encoded": b64(png_bytes()), "mimeType": "image/png"}
    body = {"instances": [{"prompt": "metrics image", "image": image}]}
    with fresh_app.client() as client:
        before = scrape(client)
        name = submit(client, body)
        assert client.post(f"/v1beta/{name}:cancel").status_code == 200
        after = scrape(client)
    finished = {"model": MODEL, "mode": "image", "state": "cancelled"}
    moved = value(after, "cinegen_operations_finished_total", **finished)
    assert moved - value(before, "cinegen_operations_finished_total", **finished) == 1
