"""Issue 27: per-key limits (concurrent operations, seconds of video a day, requests and polls
a minute), expiry and revocation, admin keys, and `/v1beta/cinegen/keys`.

In-process app with no worker threads (operations stay queued until a test runs one); keys
stored as `cinegen keys create` stores them. The per-minute window reads the authenticator's
clock, which the tests set: no test sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cinegen.api import auth
from cinegen.api.auth import create_key
from cinegen.store.db import rate_counts, utcnow
from tests.helpers import create, sample_uris, text_request, wait_done
from tests.support.app import InProcessServer, in_process, op_id

QUOTA = "Resource has been exhausted (e.g. check quota)."
KEYS = "/v1beta/cinegen/keys"


@pytest.fixture(autouse=True)
def _no_key_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key changed in the database is seen at once (else within the cache's 2 s)."""
    monkeypatch.setattr(auth, "_CACHE_SECONDS", 0.0)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "app", workers=0) as server:
        yield server


def key(app: InProcessServer, name: str = "k", **fields: Any) -> str:
    return create_key(app.db, name, **fields)[1]


def as_key(app: InProcessServer, secret: str) -> httpx.Client:
    return app.client(headers={"x-goog-api-key": secret})


def names(client: httpx.Client) -> list[str]:
    listed = client.get("/v1beta/operations", params={"pageSize": 100})
    assert listed.status_code == 200, listed.text
    return [o["name"] for o in listed.json().get("operations", [])]


def assert_quota(response: httpx.Response, limit_words: str, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert error["message"] == f"{QUOTA} {limit_words}"
    assert response.headers["retry-after"] == str(retry_after)


# concurrent operations ------------------------------------------------------------------


def test_the_n_plus_first_concurrent_operation_is_429_and_creates_nothing(
    app: InProcessServer,
) -> None:
    capped, other = key(app, max_concurrent=2), key(app)
    with as_key(app, capped) as c, as_key(app, other) as o:
        first = [create(c, text_request(f"queued {i}")).json()["name"] for i in range(2)]
        words = (
            "This API key has 2 operations queued or running, and its limit of concurrent "
            "operations is 2. Wait for one to finish, or cancel one, and try again."
        )
        assert_quota(create(c, text_request("one too many")), words, 5)
        # /v1/videos: the gateway's envelope, the same words and header.
        video = c.post("/v1/videos", json={"model": "veo-3.1-generate-preview", "prompt": "x"})
        assert_quota(video, words, 5)
        assert sorted(names(c)) == sorted(first)  # nothing kept of either refusal
        # Another key has the server's default (32), not this key's 2.
        for i in range(3):
            assert create(o, text_request(f"other {i}")).status_code == 200
        app.run(op_id(first[0]))  # running then done: its place is free again
        assert create(c, text_request("after one finished")).status_code == 200


def test_the_default_concurrent_limit_is_max_queued_per_key(tmp_path: Path) -> None:
    with in_process(tmp_path / "d", workers=0, max_queued_per_key=1) as server:
        own_limit = key(server, max_concurrent=0)  # 0: no limit for this key
        defaulted = key(server)
        with as_key(server, defaulted) as d, as_key(server, own_limit) as u:
            assert create(d, text_request("one")).status_code == 200
            assert create(d, text_request("two")).status_code == 429
            for i in range(3):
                assert create(u, text_request(f"unlimited {i}")).status_code == 200


# seconds of video a day -----------------------------------------------------------------


def test_the_daily_seconds_budget_counts_what_did_not_fail(app: InProcessServer) -> None:
    budgeted = key(app, video_seconds_per_day=16)
    with as_key(app, budgeted) as c:
        two_samples = create(c, text_request("8 s", sampleCount=2))  # 2 × 4 s
        assert two_samples.status_code == 200, two_samples.text
        assert create(c, text_request("4 s more")).status_code == 200  # 12 s
        refused = create(c, text_request("too much", durationSeconds=6))  # 12 + 6 > 16
        assert refused.status_code == 429
        words = (
            "This API key's limit of video seconds per day is 16 (UTC days): 12 s are asked "
            "for today and this request asks for 6 s more. It frees at midnight UTC."
        )
        now = utcnow()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        retry_after = int(refused.headers["retry-after"])
        assert abs(retry_after - (midnight - now).total_seconds()) < 5
        assert refused.json()["error"]["message"] == f"{QUOTA} {words}"
        assert create(c, text_request("fits")).status_code == 200  # 16
        assert create(c, text_request("nothing left")).status_code == 429
        # A cancelled operation gives its seconds back.
        name = two_samples.json()["name"]
        assert c.post(f"/v1beta/{name}:cancel").status_code == 200
        assert create(c, text_request("after the cancel", sampleCount=2)).status_code == 200
        assert len(names(c)) == 4


# requests and polls a minute ------------------------------------------------------------


def test_requests_per_minute_with_a_moved_clock(tmp_path: Path) -> None:
    with in_process(tmp_path / "r", workers=0, polls_per_minute=5) as server:
        secret = key(server, requests_per_minute=3)
        minute = 29_000_000
        server.runtime.auth.clock = lambda: minute * 60 + 10.0
        with as_key(server, secret) as c:
            made = [create(c, text_request(f"r{i}")).status_code for i in range(3)]
            assert made == [200, 200, 200]
            assert_quota(
                create(c, text_request("fourth")),
                "This API key's limit is 3 requests per minute. Try again in the next minute.",
                50,
            )
            assert len(names(c)) == 3  # polls are counted apart (1 of 5 so far)
            for _ in range(4):
                assert c.get("/v1beta/operations").status_code == 200
            polled = c.get("/v1beta/operations")
            assert_quota(
                polled,
                "This API key's limit is 5 reads per minute (polls of "
                "operations, videos and files). Try again in the next minute.",
                50,
            )
            server.runtime.auth.clock = lambda: (minute + 1) * 60 + 0.5
            assert create(c, text_request("next minute")).status_code == 200
            assert c.get("/v1beta/operations").status_code == 200
        # The counters are rows every process shares; the minutes gone by are dropped.
        server.runtime.auth.clock = lambda: (minute + 3) * 60.0
        with as_key(server, secret) as c:
            assert c.get("/v1beta/operations").status_code == 200
        with server.db.engine.connect() as conn:
            assert {row.minute for row in conn.execute(rate_counts.select())} == {minute + 3}


# expiry, revocation, admins -------------------------------------------------------------


def test_expired_and_revoked_keys_are_403_and_an_admin_still_reads_their_videos(
    app: InProcessServer,
) -> None:
    admin = key(app, "admin", admin=True)
    alice_id, alice = create_key(app.db, "alice")
    bob = key(app, "bob")
    with as_key(app, alice) as a:
        name = create(a, text_request("alice's")).json()["name"]
        app.run(op_id(name))
        uri = sample_uris(wait_done(a, name))[0]
    with as_key(app, bob) as b:  # another plain key sees none of it
        assert b.get(f"/v1beta/{name}").status_code == 404
    past = utcnow() - timedelta(days=1)
    app.db.update_key(alice_id, expire_time=past)
    with as_key(app, alice) as a:
        expired = a.get(f"/v1beta/{name}")
        assert expired.status_code == 403
        assert expired.json()["error"] == {
            "code": 403,
            "message": f"API key expired on {past:%Y-%m-%dT%H:%M:%SZ}. Please renew the API key.",
            "status": "PERMISSION_DENIED",
        }
    with as_key(app, admin) as adm:
        assert adm.get(f"/v1beta/{name}").json()["name"] == name
        assert adm.get(uri).status_code == 200
        assert name not in names(adm)  # the admin's own list stays its own
        revoked = adm.patch(f"{KEYS}/{alice_id}", json={"revoked": True, "expireTime": None})
        assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    with as_key(app, alice) as a:
        refused = a.get(f"/v1beta/{name}")
        assert refused.status_code == 403
        assert refused.json()["error"]["message"].startswith("API key revoked on ")
    with as_key(app, admin) as adm:
        assert adm.patch(f"{KEYS}/{alice_id}", json={"revoked": False}).status_code == 200
    with as_key(app, alice) as a:
        assert a.get(f"/v1beta/{name}").status_code == 200


def test_an_admin_manages_keys_over_http(app: InProcessServer) -> None:
    admin_id, admin = create_key(app.db, "admin", admin=True)
    with as_key(app, admin) as adm:
        made = adm.post(KEYS, json={"name": "ci", "maxConcurrent": 1, "expiresDays": 2})
        assert made.status_code == 200, made.text
        body = made.json()
        new_key, new_id = body["key"], body["id"]
        assert new_key.startswith("cg-") and body["admin"] is False
        assert body["limits"] == {
            "maxConcurrent": 1,
            "videoSecondsPerDay": 0,
            "requestsPerMinute": 0,
        }
        assert body["expireTime"] > f"{utcnow() + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
    with as_key(app, new_key) as ci:  # works at once, with its own limit
        assert create(ci, text_request("ci's", sampleCount=2)).status_code == 200
        assert create(ci, text_request("ci's second")).status_code == 429
    with as_key(app, admin) as adm:
        listed = {k["id"]: k for k in adm.get(KEYS).json()["keys"]}
        assert set(listed) == {admin_id, new_id} and listed[admin_id]["admin"] is True
        assert listed[new_id]["usageToday"] == {"operations": 1, "videoSeconds": 8}
        assert "key" not in listed[new_id] and "keyHash" not in listed[new_id]
        changed = adm.patch(f"{KEYS}/{new_id}", json={"maxConcurrent": None, "name": "ci-2"})
        assert changed.status_code == 200
        assert changed.json()["maxConcurrent"] is None  # back to the server's default
        assert changed.json()["limits"]["maxConcurrent"] == 32
        assert changed.json()["name"] == "ci-2" and changed.json()["expireTime"] is not None
        unknown = adm.patch(f"{KEYS}/{new_id}", json={"maxConcurent": 3})
        assert unknown.status_code == 400 and "maxConcurent" in unknown.json()["error"]["message"]
        negative = adm.patch(f"{KEYS}/{new_id}", json={"requestsPerMinute": -1})
        assert negative.status_code == 400
        assert adm.patch(f"{KEYS}/nope", json={"name": "x"}).status_code == 404
    with as_key(app, new_key) as ci:
        assert create(ci, text_request("now allowed")).status_code == 200
    with as_key(app, admin) as adm:
        assert adm.delete(f"{KEYS}/{new_id}").status_code == 200
        assert adm.delete(f"{KEYS}/{new_id}").status_code == 404
    with as_key(app, new_key) as ci:
        assert ci.get("/v1beta/operations").status_code == 403


def test_a_plain_key_may_not_manage_keys(app: InProcessServer) -> None:
    plain_id, plain = create_key(app.db, "plain")
    expected = {
        "code": 403,
        "message": "Only an admin API key may manage keys (`cinegen keys create --admin`).",
        "status": "PERMISSION_DENIED",
    }
    with as_key(app, plain) as c:
        for response in (
            c.get(KEYS),
            c.post(KEYS, json={"name": "mine", "admin": True}),
            c.patch(f"{KEYS}/{plain_id}", json={"admin": True}),
            c.delete(f"{KEYS}/{plain_id}"),
        ):
            assert response.status_code == 403
            assert response.json()["error"] == expected
    assert [k.admin for k in app.db.list_keys()] == [False]
    with app.client() as anonymous:
        assert anonymous.get(KEYS).status_code == 401


def test_an_open_server_has_no_per_minute_limits(tmp_path: Path) -> None:
    settings = {"polls_per_minute": 2, "requests_per_minute": 2}
    with in_process(tmp_path / "o", workers=0, **settings) as server, server.client() as c:
        for i in range(4):
            assert create(c, text_request(f"open {i}")).status_code == 200
            assert c.get("/v1beta/operations").status_code == 200
