"""The one error hierarchy: a refusal or a failure carries its message, its HTTP status and
its google.rpc status, and is recognised by its type, never by its words.

`api/errors.py` renders any `CinegenError` in the Google error envelope; `jobs/worker.py`
writes its `rpc_code` into a failed operation. A subclass fixes the status where the cause
does (an engine out of memory is always RESOURCE_EXHAUSTED); the base class still takes an
explicit HTTP code and status for the Veo rules, whose words and codes are Veo's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any, ClassVar


class RpcCode(IntEnum):
    """google.rpc.Code, as `Operation.error.code` carries it."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# The status word Google's envelope pairs with an HTTP code, where a caller gives only the code.
STATUS_BY_HTTP: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}


class CinegenError(Exception):
    """Base of every error cinegen reports to a caller: `message`, HTTP `code`, `status`."""

    http_code: ClassVar[int] = 500
    status_word: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, code: int | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is None:
            self.code = self.http_code
            self.status = status or self.status_word
        else:
            self.code = code
            self.status = status or STATUS_BY_HTTP.get(code, "UNKNOWN")

    def details(self) -> list[dict[str, Any]]:
        """The google.rpc detail messages the envelope carries after `status` (none here)."""
        return []

    @property
    def rpc_code(self) -> RpcCode:
        """The google.rpc code of `status` (UNKNOWN for an HTTP-only word such as 405's)."""
        return RpcCode.__members__.get(self.status, RpcCode.UNKNOWN)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code}, status={self.status!r})"


class InvalidArgument(CinegenError):
    """The caller sent something that cannot be used; sending it again will not help."""

    http_code = 400
    status_word = "INVALID_ARGUMENT"


class UnknownField(InvalidArgument):
    """A body named a field its message does not have. Google's JSON parser refuses it rather
    than drop it (a dropped `video` would turn an extension into a text video), and lists each
    one as a google.rpc.BadRequest field violation: `violations` holds (field path, sentence),
    the path "" at the top level, and the message is the sentences one a line."""

    def __init__(self, violations: Sequence[tuple[str, str]]) -> None:
        super().__init__("\n".join(sentence for _, sentence in violations))
        self.violations = tuple(violations)

    def details(self) -> list[dict[str, Any]]:
        fields = [
            {"field": field, "description": sentence} if field else {"description": sentence}
            for field, sentence in self.violations
        ]
        return [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": fields}]


class PayloadTooLarge(InvalidArgument):
    """The body is over the server's limit (HTTP 413, Google's INVALID_ARGUMENT)."""

    http_code = 413


class Unauthenticated(CinegenError):
    http_code = 401
    status_word = "UNAUTHENTICATED"


class PermissionDenied(CinegenError):
    http_code = 403
    status_word = "PERMISSION_DENIED"


class NotFound(CinegenError):
    http_code = 404
    status_word = "NOT_FOUND"


class FailedPrecondition(CinegenError):
    """The request is well formed but the resource is not in a state that allows it."""

    http_code = 400
    status_word = "FAILED_PRECONDITION"


class ResourceExhausted(CinegenError):
    http_code = 429
    status_word = "RESOURCE_EXHAUSTED"


class QuotaExceeded(ResourceExhausted):
    """A key is over one of its limits (concurrent operations, seconds a day, requests a
    minute); `retry_after` is the seconds until that limit frees (the `Retry-After` header)."""

    QUOTA_WORDS: ClassVar[str] = "Resource has been exhausted (e.g. check quota)."

    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(f"{self.QUOTA_WORDS} {limit}")
        self.retry_after = max(1, retry_after)


class Unavailable(CinegenError):
    """The server's fault, and possibly passing: trying again later may work."""

    http_code = 503
    status_word = "UNAVAILABLE"


class Internal(CinegenError):
    """The server's fault."""

    http_code = 500
    status_word = "INTERNAL"


class Cancelled(CinegenError):
    """Raised from a progress callback to stop a render whose operation was cancelled."""

    http_code = 499
    status_word = "CANCELLED"

    def __init__(self, message: str = "Operation cancelled.") -> None:
        super().__init__(message)


class DeadlineExceeded(CinegenError):
    """A job ran past its time limit (CINEGEN_JOB_TIMEOUT_SECONDS) and was stopped."""

    http_code = 504
    status_word = "DEADLINE_EXCEEDED"


class MediaError(InvalidArgument):
    """An image or video the caller sent cannot be decoded or is not usable."""


class EngineError(InvalidArgument):
    """A render failed for a reason the caller should read (an input the engine cannot use)."""


class OutOfMemory(ResourceExhausted):
    """The engine ran out of (GPU) memory for this request; a smaller one may fit."""


class InputUnavailable(Unavailable):
    """An input the job needs (a persisted image, the video to extend) is no longer there."""


class StorageError(Internal):
    """The blob store (local disk, S3, GCS) failed to read or write."""
