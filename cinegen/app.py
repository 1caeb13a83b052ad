"""Builds the ASGI app: the runtime (database, blobs, queue), the dialects, error handlers."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from cinegen.api.auth import Authenticator
from cinegen.api.errors import install_error_handlers
from cinegen.api.gemini.routes import router as gemini_router
from cinegen.api.health import install_health
from cinegen.api.jwks import router as jwks_router
from cinegen.api.keys import router as keys_router
from cinegen.api.request_context import install as install_request_context
from cinegen.api.runtime import Runtime
from cinegen.api.usage import router as usage_router
from cinegen.api.verify import router as verify_router
from cinegen.api.vertex.routes import router as vertex_router
from cinegen.api.videos.routes import router as videos_router
from cinegen.api.webhook_deliveries import router as webhook_deliveries_router
from cinegen.api.webhooks import router as webhooks_router
from cinegen.core import tracing
from cinegen.core.catalog import Catalog
from cinegen.engines.registry import build_engines, worker_threads
from cinegen.jobs.celery_queue import broker_queue
from cinegen.jobs.queue import InProcessQueue, JobQueue
from cinegen.jobs.webhooks import DeliveryLoop
from cinegen.jobs.worker import JobContext
from cinegen.service.credentials import SigningConfigError, start_signing
from cinegen.service.deliveries import Deliveries
from cinegen.service.files import FileService
from cinegen.service.health import Warmup
from cinegen.service.inputs import InputService
from cinegen.service.operations import OperationService
from cinegen.service.webhooks import WebhookService
from cinegen.settings import Settings
from cinegen.store.blob_urls import blob_store_from_settings
from cinegen.store.blobs import BlobStoreConfigError, private_dir, private_file
from cinegen.store.db import Database
from cinegen.store.gcs import gcs_store_from_settings
from cinegen.web.routes import router as web_router

log = logging.getLogger("cinegen")


def _sqlite_file(url: str) -> Path | None:
    """The database file of a `sqlite:///` URL; None for another database or `:memory:`."""
    if not url.startswith("sqlite:///"):
        return None
    name = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


SETTING_ERRORS: tuple[type[Exception], ...] = (BlobStoreConfigError, SigningConfigError)
"""What `build_runtime` raises for a setting the operator must fix (a blob store that cannot
be used, a C2PA certificate that cannot be read): `serve` and `worker` print the message and
exit 2, not a traceback."""


def build_runtime(settings: Settings) -> Runtime:
    # What the server keeps is its user's alone: the data dir 0700, the SQLite file 0600
    # (made before SQLite opens it; its journal files take its mode).
    private_dir(settings.data_dir)
    if (db_file := _sqlite_file(settings.resolved_database_url)) is not None:
        private_file(db_file)
    start_signing(settings)  # C2PA: the development certificate made, or the operator's checked
    db = Database(settings.resolved_database_url)
    db.migrate()
    db.finish_events = Deliveries(settings)  # webhook events, written with each operation's end
    files = FileService(db, blob_store_from_settings(settings), settings)
    inputs = InputService(files, gcs_store_from_settings(settings))
    catalog = Catalog()
    engines = build_engines(settings, catalog)
    queue: JobQueue = broker_queue(settings, db) or InProcessQueue(
        workers=worker_threads(settings, engines),
        max_attempts=settings.max_attempts,
        poll_interval=settings.poll_interval_seconds,
    )
    service = OperationService(db, files, inputs, settings, jobs=queue, catalog=catalog)
    return Runtime(
        settings=settings,
        db=db,
        service=service,
        auth=Authenticator(db),
        queue=queue,
        catalog=catalog,
        jobs=JobContext(service=service, engines=engines),
    )


def _sweeper(rt: Runtime, stop: threading.Event) -> None:
    """Deletes expired videos from disk every `sweep_interval_seconds`."""
    while not stop.wait(rt.settings.sweep_interval_seconds):
        try:
            rt.service.files.sweep_expired()
        except Exception:
            log.exception("retention sweep failed")


def _start_warmup(rt: Runtime) -> Warmup | None:
    """CINEGEN_DIFFUSERS_WARMUP: warm the diffusers pipelines in a thread (`/healthz` answers
    meanwhile; `/readyz` says `warming` until it is done)."""
    engine = rt.jobs.engines.get("diffusers")
    if not rt.settings.diffusers_warmup or engine is None:
        return None
    warmup = Warmup()
    threading.Thread(target=warmup.run, args=(engine,), name="cinegen-warmup", daemon=True).start()
    return warmup


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    rt = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        rt.service.files.sweep_expired()
        try:  # what killed processes left: scratch dirs, partial writes, orphan inputs
            rt.service.files.sweep_orphans()
        except Exception:
            log.exception("start-up sweep of orphaned files failed")
        _app.state.warmup = _start_warmup(rt)
        rt.queue.start(rt.jobs)
        sweeper = threading.Thread(target=_sweeper, args=(rt, stop), daemon=True)
        sweeper.start()
        webhooks = DeliveryLoop(rt.db, rt.settings, getattr(rt.db.finish_events, "wake", None))
        webhooks.start()
        yield
        stop.set()
        webhooks.stop()
        rt.queue.stop()

    app = FastAPI(
        title="cinegen", version="0.1.0", lifespan=lifespan, docs_url="/docs", redoc_url=None
    )
    app.state.runtime = rt
    app.state.webhooks = WebhookService(rt.db, settings)
    install_error_handlers(app)
    tracing.configure_from_env()
    install_request_context(app, access_log=settings.log_access)
    # The Gemini routes first: their poll route is the hot path, and no path of the other
    # dialects matches a Gemini pattern (each has a literal second segment of its own).
    app.include_router(gemini_router)
    app.include_router(videos_router)
    app.include_router(vertex_router)
    app.include_router(keys_router)
    app.include_router(usage_router)
    app.include_router(verify_router)  # POST /v1beta/cinegen:verify
    app.include_router(webhooks_router)
    app.include_router(webhook_deliveries_router)
    app.include_router(jwks_router)  # /.well-known/jwks.json, unauthenticated
    app.include_router(web_router)
    install_health(app, rt)  # /healthz, /readyz, /metrics; request timing
    return app
