"""A long-running operation and its samples, as every dialect renders it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        return self in (State.SUCCEEDED, State.FAILED, State.CANCELLED)


@dataclass(frozen=True)
class Sample:
    """One generated video: a file this server serves by `file_id`."""

    file_id: str
    seed: int
    mime_type: str = "video/mp4"
    size_bytes: int = 0
    duration_seconds: float = 0.0


@dataclass
class Operation:
    id: str
    model: str
    dialect: str
    owner: str | None
    state: State
    create_time: datetime
    update_time: datetime
    request: dict[str, Any]  # the GenerateRequest, serialised by service/codec.py
    progress: float = 0.0  # 0..100
    seed: int = 0  # the request's seed, drawn when the client gave none
    samples: list[Sample] = field(default_factory=list)
    error_code: int | None = None
    error_message: str | None = None
    rai_filtered_count: int = 0
    rai_filtered_reasons: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # engine facts for the metadata
    resource_prefix: str = ""  # "projects/p/locations/l/" for Vertex names
    attempts: int = 0

    @property
    def done(self) -> bool:
        return self.state.done
