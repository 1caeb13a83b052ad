"""Per-key limits on jobs (issue 31 item 4): a cap on the operations one key has queued or
running (429 RESOURCE_EXHAUSTED), and a per-job timeout (DEADLINE_EXCEEDED)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import create, operation, text_request
from tests.support.app import in_process, op_id
from tests.support.engines import ScriptedEngine

CAP_WORDS = (
    "Resource has been exhausted (e.g. check quota). This API key has 2 operations queued or "
    "running, and its limit of concurrent operations is 2. Wait for one to finish, or cancel "
    "one, and try again."
)


def test_a_key_over_its_queued_cap_is_refused_429_and_others_are_not(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    with in_process(
        tmp_path / "data", workers=0, engines={"preview": engine}, max_queued_per_key=2
    ) as app:
        alice, bob = app.add_key("alice"), app.add_key("bob")
        with (
            app.client(headers={"x-goog-api-key": alice}) as a,
            app.client(headers={"x-goog-api-key": bob}) as b,
        ):
            names = [create(a, text_request(f"queued {i}")).json()["name"] for i in range(2)]
            refused = create(a, text_request("one too many"))
            assert refused.status_code == 429, refused.text
            assert refused.json() == {
                "error": {"code": 429, "message": CAP_WORDS, "status": "RESOURCE_EXHAUSTED"}
            }
            assert len(a.get("/v1beta/operations").json()["operations"]) == 2  # nothing kept
            # Another key has a cap of its own.
            assert create(b, text_request("bob's first")).status_code == 200
            # A finished job frees its place; a cancelled one too.
            app.run(op_id(names[0]))
            assert operation(a, names[0])["done"] is True
            assert create(a, text_request("after one finished")).status_code == 200
            assert create(a, text_request("full again")).status_code == 429
            assert a.post(f"/v1beta/{names[1]}:cancel").status_code == 200
            assert create(a, text_request("after a cancel")).status_code == 200


def test_a_cap_of_zero_means_no_cap(tmp_path: Path) -> None:
    with in_process(tmp_path / "data", workers=0, max_queued_per_key=0) as app, app.client() as c:
        for i in range(3):
            assert create(c, text_request(f"uncapped {i}")).status_code == 200


def test_a_job_past_its_timeout_fails_deadline_exceeded(tmp_path: Path) -> None:
    # A timeout already past at the first progress report: no clock is read by the test.
    engine = ScriptedEngine(steps=1000)
    with (
        in_process(
            tmp_path / "data", workers=0, engines={"preview": engine}, job_timeout_seconds=1e-9
        ) as app,
        app.client() as client,
    ):
        name = create(client, text_request("too slow")).json()["name"]
        app.run(op_id(name))
        op = operation(client, name)
    assert engine.renders == 1 and engine.reported == 0  # stopped at its first report
    assert op["done"] is True and "response" not in op
    assert op["error"] == {
        "code": 4,  # DEADLINE_EXCEEDED
        "message": (
            "The video took longer than this server's limit of 1e-09 seconds per job "
            "(CINEGEN_JOB_TIMEOUT_SECONDS) and was stopped. Ask for fewer seconds, a lower "
            "resolution or fewer samples, or try again later."
        ),
    }
    assert not list(app.settings.resolved_blob_dir.rglob("*.mp4"))


def test_a_job_within_its_timeout_succeeds(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    with (
        in_process(tmp_path / "data", workers=0, engines={"preview": engine}) as app,
        app.client() as client,
    ):
        name = create(client, text_request("in time")).json()["name"]
        app.run(op_id(name))
        assert "response" in operation(client, name)
