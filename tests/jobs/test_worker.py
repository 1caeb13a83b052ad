"""One job run by `run_job` (jobs/worker.py), in the test's thread: cancel before and during
the render, and an engine's failure as the operation's error, by the error's type.

The engine is a `ScriptedEngine` (tests/support/engines.py): the test decides what happens
before each of its progress reports, and what it raises.
"""

from __future__ import annotations

import httpx
import pytest

from cinegen.core.errors import EngineError, InputUnavailable, OutOfMemory
from cinegen.core.operation import State
from tests.helpers import b64, operation, png_bytes, sample_uris, submit, text_request
from tests.support.app import InProcessServer, op_id
from tests.support.engines import ScriptedEngine


def stored_videos(app: InProcessServer) -> list:
    return sorted(app.settings.resolved_blob_dir.rglob("*.mp4"))


def test_cancel_of_a_queued_operation_ends_it_at_once(
    app: InProcessServer, client: httpx.Client, engine: ScriptedEngine
) -> None:
    name = submit(client, text_request("cancelled before it starts"))
    cancel = client.post(f"/v1beta/{name}:cancel")
    assert cancel.status_code == 200 and cancel.json() == {}
    op = operation(client, name)
    assert op["done"] is True and "response" not in op
    assert op["error"]["code"] == 1  # CANCELLED
    app.run(op_id(name))  # the queue still delivers it: nothing runs
    assert engine.renders == 0
    assert app.db.get_operation(op_id(name)).state == State.CANCELLED


def test_cancel_of_a_running_operation_stops_it_at_a_progress_report(
    app: InProcessServer, client: httpx.Client, engine: ScriptedEngine
) -> None:
    name = submit(client, text_request("cancelled while it renders"))
    seen_after_cancel: list[dict] = []

    def cancel_at_the_second_step(step: int) -> None:
        if step == 1:
            assert client.post(f"/v1beta/{name}:cancel").status_code == 200
        if step >= 1:
            seen_after_cancel.append(operation(client, name))

    engine.steps, engine.pause, engine.before_step = 2000, 0.005, cancel_at_the_second_step
    app.run(op_id(name))

    assert engine.renders == 1
    assert 1 <= engine.reported < engine.steps  # it stopped at a report, long before the end
    # Until the engine reported again, the operation ran on: a cancel does not end it itself.
    assert seen_after_cancel[0]["done"] is False
    assert seen_after_cancel[0]["metadata"]["state"] == "RUNNING"
    op = operation(client, name)
    assert op["done"] is True and "response" not in op
    assert op["error"]["code"] == 1
    assert app.db.get_operation(op_id(name)).state == State.CANCELLED
    assert stored_videos(app) == []


FAILURES = {
    # Typed, not read from the words: an OutOfMemory whose message never says "out of memory"
    # is RESOURCE_EXHAUSTED, and an EngineError that says it is not.
    "out_of_memory": (
        OutOfMemory("The GPU could not hold 1280x720 at 121 frames; ask for fewer seconds."),
        8,
        "The GPU could not hold 1280x720 at 121 frames; ask for fewer seconds.",
    ),
    "engine_error_saying_out_of_memory": (
        EngineError("The input video has no frames (out of memory has nothing to do with it)."),
        3,
        "The input video has no frames (out of memory has nothing to do with it).",
    ),
    "input_unavailable": (
        InputUnavailable("The input video is no longer available."),
        14,
        "The input video is no longer available.",
    ),
    "a_bug": (
        RuntimeError("KeyError in /srv/cinegen/secret_path.py"),
        13,
        "Internal error while generating the video. The server log has details.",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_an_engine_failure_fails_the_operation_with_its_code(
    app: InProcessServer, client: httpx.Client, engine: ScriptedEngine, case: str
) -> None:
    error, code, message = FAILURES[case]
    engine.error, engine.fail_on = error, 2  # the second sample fails, the first was stored
    name = submit(client, text_request("two samples, one fails", sampleCount=2))
    app.run(op_id(name))

    op = operation(client, name)
    assert op["done"] is True and "response" not in op
    assert op["error"] == {"code": code, "message": message}
    assert engine.renders == 2
    assert stored_videos(app) == []  # the first sample's video was removed with the failure

    engine.error = None  # and the worker goes on with the next job
    after = submit(client, text_request("the next job"))
    app.run(op_id(after))
    assert len(sample_uris(operation(client, after))) == 1
    assert len(stored_videos(app)) == 1


def test_an_input_gone_from_the_store_fails_the_operation_as_unavailable(
    app: InProcessServer, client: httpx.Client, engine: ScriptedEngine
) -> None:
    """The server's loss, not the caller's mistake: UNAVAILABLE (14), not INVALID_ARGUMENT."""
    image = {"bytesBase64Encoded": b64(png_bytes()), "mimeType": "image/png"}
    name = submit(client, {"instances": [{"prompt": "from a photo", "image": image}]})
    app.runtime.service.inputs.delete(op_id(name))  # the persisted image is gone
    app.run(op_id(name))

    op = operation(client, name)
    assert op["error"] == {"code": 14, "message": "The request input could not be found."}
    assert engine.renders == 0
