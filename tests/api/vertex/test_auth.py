"""Vertex auth: `Authorization: Bearer` and `x-goog-api-key` (express), one tenancy."""

from __future__ import annotations

import httpx
import pytest

from tests.api.vertex.support import model_path, vcreate, vfetch, vwait
from tests.support.server import ServerProcess, create_key

pytestmark = pytest.mark.xdist_group("vertex")

BODY = {"instances": [{"prompt": "auth"}], "parameters": {"durationSeconds": 4}}


def test_bearer_and_api_key_with_per_key_tenancy(fresh_server: ServerProcess) -> None:
    fresh_server.data_dir.mkdir(parents=True)
    alice, bob = create_key(fresh_server), create_key(fresh_server)
    fresh_server.start()
    url = fresh_server.url

    with httpx.Client(base_url=url, timeout=60) as anon:
        missing = vcreate(anon, BODY)
        assert missing.status_code == 401
        assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": "Bearer ya29.x"}) as bad:
        refused = vcreate(bad, BODY)
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == (
            "API key not valid. Please pass a valid API key."
        )

    # Alice creates with a Bearer token and polls with x-goog-api-key: the same owner.
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {alice}"}) as a:
        name = vcreate(a, BODY).json()["name"]
    with httpx.Client(base_url=url, timeout=60, headers={"x-goog-api-key": alice}) as a:
        op = vwait(a, name)
        assert op["response"]["videos"][0]["bytesBase64Encoded"]
        assert a.get(f"/v1/{name}").status_code == 200

    # Bob sees nothing of it, by either header, by either poll.
    for headers in ({"Authorization": f"Bearer {bob}"}, {"x-goog-api-key": bob}):
        with httpx.Client(base_url=url, timeout=60, headers=headers) as b:
            assert vfetch(b, name).status_code == 404
            assert b.get(f"/v1/{name}").status_code == 404
    assert (
        httpx.post(
            f"{url}{model_path()}:fetchPredictOperation", json={"operationName": name}
        ).status_code
        == 401
    )
