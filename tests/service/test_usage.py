"""Usage metering: the row each succeeded operation leaves, and `GET /v1beta/cinegen/usage`.

Jobs run in the test's thread with a `ScriptedEngine` (tests/support/engines.py) making 2 s
of flat frames, so the seconds, samples and prices are known; a failed job leaves no row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cinegen.api.auth import create_key
from cinegen.core.catalog import MODELS, Catalog
from cinegen.core.errors import EngineError
from cinegen.core.operation import Operation, Sample, State
from cinegen.core.pricing import veo_price
from cinegen.core.request import GenerateRequest, MediaRef
from cinegen.service.codec import request_to_json
from cinegen.service.usage import usage_row
from cinegen.store.db import utcnow
from tests.helpers import submit, text_request
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.engines import ScriptedEngine

STANDARD = "veo-3.1-generate-preview"
FAST = "veo-3.1-fast-generate-preview"
USAGE = "/v1beta/cinegen/usage"


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine(frames=48)  # 2 s at 24 fps


@pytest.fixture
def app(tmp_path: Path, engine: ScriptedEngine) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "data", workers=0, engines={"preview": engine}) as server:
        yield server


def _client(app: InProcessServer, key: str) -> httpx.Client:
    return app.client(headers={"x-goog-api-key": key})


def _run(app: InProcessServer, client: httpx.Client, body: dict, model: str = STANDARD) -> str:
    name = submit(client, body, model)
    app.run(op_id(name))
    return op_id(name)


def _made_seconds(app: InProcessServer, op: str) -> float:
    return sum(s.duration_seconds for s in app.db.get_operation(op).samples)


def test_a_succeeded_operation_records_its_usage_in_one_row(app: InProcessServer) -> None:
    key_id, key = create_key(app.db, "team-a")
    with _client(app, key) as client:
        op = _run(app, client, text_request("two samples", sampleCount=2), FAST)
    row = app.db.usage_of(op)
    seconds = _made_seconds(app, op)
    assert seconds == pytest.approx(4.0, abs=0.1)  # 2 samples × 2 s
    assert row["owner"] == key_id
    assert (row["model"], row["mode"], row["resolution"], row["audio"]) == (
        FAST,
        "text",
        "720p",
        True,
    )
    assert row["samples"] == 2
    assert row["seconds"] == pytest.approx(seconds, abs=1e-3)
    assert row["engine_seconds"] > 0
    assert row["veo_price_per_second"] == 0.15
    assert row["veo_price_usd"] == pytest.approx(seconds * 0.15, abs=1e-6)
    assert row["day"] == utcnow().date().isoformat()


def test_the_endpoint_sums_a_keys_own_usage_by_model(app: InProcessServer) -> None:
    _, key_a = create_key(app.db, "a")
    _, key_b = create_key(app.db, "b")
    with _client(app, key_a) as a, _client(app, key_b) as b:
        ops = [_run(app, a, text_request("one")), _run(app, a, text_request("two"))]
        ops.append(_run(app, a, text_request("fast", resolution="1080p", durationSeconds=8), FAST))
        _run(app, b, text_request("another key's"))
        answer = a.get(USAGE, params={"group_by": "model"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seconds = [_made_seconds(app, op) for op in ops]
        assert body["groupBy"] == ["model"]
        by_model = {row["model"]: row for row in body["rows"]}
        assert set(by_model) == {STANDARD, FAST}  # not key b's
        assert by_model[STANDARD]["operations"] == 2
        assert by_model[STANDARD]["samples"] == 2
        assert by_model[STANDARD]["seconds"] == pytest.approx(seconds[0] + seconds[1], abs=2e-3)
        assert by_model[STANDARD]["veoPriceUsd"] == pytest.approx(
            0.40 * (seconds[0] + seconds[1]), abs=1e-5
        )
        assert by_model[FAST]["veoPriceUsd"] == pytest.approx(0.15 * seconds[2], abs=1e-5)
        total = body["total"]
        assert total["operations"] == 3
        assert total["seconds"] == pytest.approx(sum(seconds), abs=3e-3)
        assert total["engineSeconds"] > 0
        # Key b sees only its own one operation.
        assert b.get(USAGE).json()["total"]["operations"] == 1


def test_a_failed_operation_is_not_metered(app: InProcessServer, engine: ScriptedEngine) -> None:
    """Veo bills only a video that was made: no row, the sums unchanged."""
    _, key = create_key(app.db, "a")
    with _client(app, key) as client:
        done = _run(app, client, text_request("made"))
        engine.error = EngineError("the engine broke")
        failed = _run(app, client, text_request("broken"))
        assert app.db.get_operation(failed).state.value == "failed"
        assert app.db.usage_of(failed) is None
        total = client.get(USAGE).json()["total"]
    assert total["operations"] == 1
    assert total["seconds"] == pytest.approx(_made_seconds(app, done), abs=1e-3)


def test_an_admin_sees_every_key_grouped_and_as_csv(app: InProcessServer) -> None:
    key_a, a_key = create_key(app.db, "a")
    key_b, b_key = create_key(app.db, "b")
    _, admin_key = create_key(app.db, "ops", admin=True)
    with _client(app, a_key) as a, _client(app, b_key) as b, _client(app, admin_key) as admin:
        _run(app, a, text_request("a one"))
        _run(app, b, text_request("b one"))
        _run(app, b, text_request("b two"), FAST)
        grouped = admin.get(USAGE, params={"group_by": "key,day"}).json()
        assert [(r["key"], r["operations"]) for r in grouped["rows"]] == sorted(
            [(key_a, 1), (key_b, 2)]
        )
        assert {r["day"] for r in grouped["rows"]} == {utcnow().date().isoformat()}
        as_csv = admin.get(USAGE, params={"group_by": "key,model", "format": "csv"})
        assert as_csv.status_code == 200
        assert as_csv.headers["content-type"].startswith("text/csv")
        lines = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert {(r["key"], r["model"], r["operations"]) for r in lines} == {
            (key_a, STANDARD, "1"),
            (key_b, STANDARD, "1"),
            (key_b, FAST, "1"),
        }
        by_header = admin.get(USAGE, headers={"Accept": "text/csv"})
        assert by_header.text.splitlines()[0] == (
            "operations,seconds,samples,engine_seconds,veo_price_usd"
        )
        refused = a.get(USAGE, params={"format": "csv"})
        assert refused.status_code == 403
        assert refused.json()["error"]["status"] == "PERMISSION_DENIED"


def test_dates_filter_and_bad_ones_are_refused_in_googles_envelope(app: InProcessServer) -> None:
    _, key = create_key(app.db, "a")
    today = utcnow().date()
    with _client(app, key) as client:
        _run(app, client, text_request("today"))

        def operations(**params: str) -> int:
            answer = client.get(USAGE, params=params)
            assert answer.status_code == 200, answer.text
            return answer.json()["total"]["operations"]

        assert operations() == 1  # today UTC by default
        assert operations(start=str(today), end=str(today)) == 1  # a date `end` includes it
        yesterday = str(today - timedelta(days=1))
        assert operations(start=yesterday, end=yesterday) == 0
        now = utcnow()
        assert operations(start=(now - timedelta(hours=1)).isoformat(), end=now.isoformat()) == 1
        after = (now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert operations(start=after, end=str(today)) == 0
        for params in (
            {"start": "yesterday"},
            {"end": "2026-13-40"},
            {"start": "2026-01-31T08:00:00"},  # no time zone
            {"start": "9999-12-31T23:00:00-05:00"},  # past year 9999 in UTC
            {"start": str(today), "end": yesterday},  # end before start
            {"group_by": "model,colour"},
        ):
            answer = client.get(USAGE, params=params)
            assert answer.status_code == 400, (params, answer.text)
            assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_usage_needs_a_key_once_keys_exist(app: InProcessServer) -> None:
    create_key(app.db, "a")
    with app.client() as anonymous:
        answer = anonymous.get(USAGE)
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


# The price table against the seeds (shared/seeds/002, the Gemini API's prices of November
# 2025): "标准版 $0.40/秒, Fast 版 $0.15/秒" for Veo 3.0 and Veo 3.1, and its worked examples.
SEED_PRICES = {
    "veo-3.1-generate-preview": 0.40,
    "veo-3.1-fast-generate-preview": 0.15,
    "veo-3.1-generate-001": 0.40,
    "veo-3.1-fast-generate-001": 0.15,
    "veo-3.0-generate-001": 0.40,
    "veo-3.0-fast-generate-001": 0.15,
    "veo-3.0-generate-preview": 0.40,
    "veo-3.0-fast-generate-preview": 0.15,
}


@pytest.mark.parametrize("model", sorted(SEED_PRICES))
@pytest.mark.parametrize("resolution", ["720p", "1080p"])
def test_the_price_table_has_the_seeds_prices(model: str, resolution: str) -> None:
    price = veo_price(MODELS[model], resolution, audio=True)
    assert price is not None and price.per_second == SEED_PRICES[model]


def test_the_seeds_worked_examples() -> None:
    standard = veo_price(MODELS["veo-3.1-generate-preview"], "1080p", audio=True)
    fast = veo_price(MODELS["veo-3.1-fast-generate-preview"], "720p", audio=True)
    assert standard is not None and fast is not None
    assert round(standard.per_second * 8, 2) == 3.20  # "8 秒 1080p 视频(标准版): $3.20"
    assert round(fast.per_second * 8, 2) == 1.20  # "8 秒 720p 视频(Fast 版): $1.20"
    assert round(fast.per_second * 6 * 100, 2) == 90.0  # "100 个 6 秒视频(Fast 版): $90"


def test_every_served_veo_model_has_a_price() -> None:
    for row in MODELS.values():
        for resolution in row.resolutions:
            for audio in (True, False) if row.audio != "never" else (False,):
                assert veo_price(row, resolution, audio) is not None, (row.id, resolution)


def _operation(req: GenerateRequest) -> Operation:
    now = utcnow()
    return Operation(
        id="op",
        model=req.model,
        dialect=req.dialect,
        owner="k1",
        state=State.RUNNING,
        create_time=now,
        update_time=now,
        request=request_to_json(req),
    )


def test_a_usage_row_prices_the_request_as_veo_would() -> None:
    catalog = Catalog()
    extension = GenerateRequest(
        model=STANDARD,
        prompt="on",
        video=MediaRef(file_id="f"),
        resolution="720p",
        generate_audio=True,
    )
    row = usage_row(_operation(extension), [Sample("a", 1, duration_seconds=15.0)], 3.5, catalog)
    # An extension made 7 new seconds; the 8 of its input are not made again.
    assert (row["mode"], row["seconds"], row["veo_price_usd"]) == ("extension", 7.0, 2.8)
    assert row["engine_seconds"] == 3.5
    silent = GenerateRequest(
        model="veo-3.0-fast-generate-001", prompt="x", resolution="1080p", generate_audio=False
    )
    row = usage_row(_operation(silent), [Sample("a", 1, duration_seconds=8.0)] * 2, 1.0, catalog)
    assert (row["samples"], row["seconds"], row["veo_price_per_second"]) == (2, 16.0, 0.10)
    assert row["veo_price_usd"] == pytest.approx(1.6)
    lite = GenerateRequest(
        model="veo-3.1-lite-generate-preview", prompt="x", resolution="1080p", generate_audio=True
    )
    row = usage_row(_operation(lite), [Sample("a", 1, duration_seconds=8.0)], 1.0, catalog)
    assert row["veo_price_usd"] == pytest.approx(0.64)
    unknown = GenerateRequest(model="wan-2.1-t2v", prompt="x", generate_audio=False)
    row = usage_row(_operation(unknown), [Sample("a", 1, duration_seconds=5.0)], 1.0, catalog)
    assert row["veo_price_per_second"] is None and row["veo_price_usd"] is None


def test_an_open_server_shows_its_operator_everything_and_csv(app: InProcessServer) -> None:
    with app.client() as client:
        _run(app, client, text_request("no keys here"))
        assert client.get(USAGE).json()["total"]["operations"] == 1
        as_csv = client.get(USAGE, params={"format": "csv", "group_by": "key"})
    assert as_csv.status_code == 200
    assert as_csv.text.splitlines()[1].startswith(",1,")  # the anonymous owner: no key id
