"""What every route needs, built once per app: settings, database, service, auth, queue, and
the context the queue's jobs run with."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from cinegen.api.auth import Authenticator
from cinegen.core.catalog import Catalog
from cinegen.jobs.queue import JobQueue
from cinegen.jobs.worker import JobContext
from cinegen.service.operations import OperationService
from cinegen.settings import Settings
from cinegen.store.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    service: OperationService
    auth: Authenticator
    catalog: Catalog
    queue: JobQueue
    jobs: JobContext


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime
