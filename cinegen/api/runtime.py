"""What every route needs, built once per app: settings, database, service, auth, queue."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from cinegen.api.auth import Authenticator
from cinegen.jobs.queue import InProcessQueue
from cinegen.service.operations import OperationService
from cinegen.settings import Settings
from cinegen.store.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    service: OperationService
    auth: Authenticator
    queue: InProcessQueue


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime
