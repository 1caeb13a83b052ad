"""The log format, the ids on each line, and redaction (cinegen/core/logs.py)."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import Iterator

import pytest

from cinegen.core import logs

KEY = "cg-" + "Abc123_-" * 5
PAYLOAD = base64.b64encode(os.urandom(600)).decode()


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root handler as `cinegen serve` installs it, in JSON, writing to a buffer."""
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


def test_each_line_is_one_json_object_with_the_ids(json_lines: io.StringIO) -> None:
    log = logging.getLogger("cinegen.test")
    log.info("outside")
    token = logs.bind(request_id="req-1")
    logs.bind_operation("op-1")
    try:
        log.warning("inside %s", "here", extra={"detail": {"n": 1}})
    finally:
        logs.unbind(token)
    outside, inside = parsed(json_lines)
    assert outside["message"] == "outside" and "request_id" not in outside
    assert inside["message"] == "inside here"
    assert (inside["request_id"], inside["operation_id"]) == ("req-1", "op-1")
    assert inside["level"] == "WARNING" and inside["logger"] == "cinegen.test"
    assert inside["detail"] == {"n": 1}


def test_an_exception_is_one_field_of_its_line(json_lines: io.StringIO) -> None:
    try:
        raise RuntimeError(f"boom with key={KEY}")
    except RuntimeError:
        logging.getLogger("cinegen.test").exception("failed")
    (line,) = parsed(json_lines)
    assert "RuntimeError: boom" in line["exception"]
    assert KEY not in json_lines.getvalue()


@pytest.mark.parametrize(
    "message",
    [
        "GET /v1beta/models?key={key} HTTP/1.1",
        "headers: {{'x-goog-api-key': '{key}'}}",
        "raw: [(b'x-goog-api-key', b'{key}')]",
        "x-goog-api-key: {key}",
        "Authorization: Bearer {key}",
        "the key {key} was refused",
    ],
)
def test_keys_are_redacted_in_every_shape(message: str, json_lines: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").warning(message.format(key=KEY))
    assert KEY not in json_lines.getvalue()
    assert logs.REDACTED in json_lines.getvalue()


def test_a_key_given_as_an_argument_is_redacted(json_lines: io.StringIO) -> None:
    logging.getLogger("cinegen.test").info("presented %s and %s", KEY, {"key": f"key={KEY}"})
    assert KEY not in json_lines.getvalue()


def test_base64_payloads_are_redacted_but_ids_and_paths_kept() -> None:
    video_id = base64.urlsafe_b64encode(b"models/veo-3.1/operations/0123456789abcdef").decode()
    path = "/tmp/pytest-of-root/pytest-12/test_a_long_name_here0/data/files/0123456789abcdef"
    text = f'{{"bytesBase64Encoded": "{PAYLOAD}"}} GET /v1/videos/{video_id} {path}'
    cleaned = logs.redact(text)
    assert PAYLOAD not in cleaned and PAYLOAD[:100] not in cleaned
    assert f"[base64, {len(PAYLOAD)} characters]" in cleaned
    assert video_id in cleaned and path in cleaned


def test_text_format_names_the_ids() -> None:
    record = logging.LogRecord("cinegen.x", logging.INFO, __file__, 1, "hello", (), None)
    record.request_id, record.operation_id = "r1", "o1"
    assert logs.TextFormatter().format(record).endswith("INFO cinegen.x [req=r1 op=o1]: hello")


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.resolve_format("auto", Tty()) == "text"
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("json", Tty()) == "json"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("bad\nline", False),
        ("caf\u00e9", False),
        ("   ", False),
        ("", False),
        (None, False),
    ],
)
def test_request_id_is_kept_only_when_printable_and_short(given: str | None, kept: bool) -> None:
    result = logs.request_id_or_new(given)
    assert (result == given) is kept
    assert 0 < len(result) <= 128
