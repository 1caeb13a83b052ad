"""Bound beyond loopback with no key, the server fails closed (issue 31, item 7).

`cinegen serve` refuses to start on a public address with no key; this is the same rule held
on every request, so deleting the last key while it runs closes it instead of opening it.
In this process no socket is opened: the settings' `host` is what the server would bind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cinegen.api import auth
from cinegen.api.auth import is_loopback_host
from tests.support.app import InProcessServer, in_process

BODY = {"instances": [{"prompt": "a fox"}]}
CREATE = "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"


@pytest.fixture(autouse=True)
def no_key_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key deleted by `cinegen keys delete` is seen within the cache's 2 s; here at once."""
    monkeypatch.setattr(auth, "_CACHE_SECONDS", 0.0)


@pytest.fixture
def public(tmp_path: Path) -> Iterator[InProcessServer]:
    with in_process(tmp_path, workers=0, host="0.0.0.0") as server:
        yield server


def _delete_all_keys(server: InProcessServer) -> None:
    for row in server.db.list_keys():
        assert server.db.delete_key(row.id)


def test_deleting_the_last_key_closes_a_public_server(public: InProcessServer) -> None:
    key = public.add_key()
    with public.client(headers={"x-goog-api-key": key}) as c:
        assert c.post(CREATE, json=BODY).status_code == 200
    _delete_all_keys(public)
    for headers in ({}, {"x-goog-api-key": key}, {"x-goog-api-key": "anything"}):
        with public.client(headers=headers) as c:
            for response in (c.post(CREATE, json=BODY), c.get("/v1beta/operations")):
                assert response.status_code == 403, response.text
                error = response.json()["error"]
                assert error["status"] == "PERMISSION_DENIED"
                assert "no API key" in error["message"]
                assert "cinegen keys create" in error["message"]
    # A new key opens it again, for its holder only.
    key = public.add_key()
    with public.client(headers={"x-goog-api-key": key}) as c:
        assert c.get("/v1beta/operations").status_code == 200
    with public.client() as c:
        assert c.get("/v1beta/operations").status_code == 401


def test_public_server_never_keyed_is_closed(public: InProcessServer) -> None:
    with public.client() as c:
        assert c.get("/v1/videos").status_code == 403


def test_allow_public_bind_keeps_it_open(tmp_path: Path) -> None:
    settings = {"workers": 0, "host": "0.0.0.0", "allow_public_bind": True}
    with in_process(tmp_path, **settings) as server, server.client() as c:
        assert c.get("/v1beta/operations").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_without_keys_stays_open(tmp_path: Path, host: str) -> None:
    with in_process(tmp_path, workers=0, host=host) as server, server.client() as c:
        assert c.get("/v1beta/operations").status_code == 200


def test_which_hosts_are_loopback() -> None:
    assert all(map(is_loopback_host, ["127.0.0.1", "localhost", "::1", "LOCALHOST"]))
    assert not any(map(is_loopback_host, ["0.0.0.0", "::", "10.0.0.1", "example.com", ""]))
