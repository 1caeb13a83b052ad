"""Vertex auth: `Authorization: Bearer` and `x-goog-api-key` (express), one tenancy.

HTTP semantics only: the app runs in this process (`fresh_app`, tests/support/app.py), with
keys stored as `cinegen keys create` stores them.
"""

from __future__ import annotations

import pytest

from tests.api.vertex.support import model_path, vcreate, vfetch, vwait
from tests.support.app import InProcessServer, op_id

pytestmark = pytest.mark.xdist_group("vertex")

BODY = {"instances": [{"prompt": "auth"}], "parameters": {"durationSeconds": 4}}


def test_bearer_and_api_key_with_per_key_tenancy(fresh_app: InProcessServer) -> None:
    alice, bob = fresh_app.add_key(), fresh_app.add_key()

    with fresh_app.client() as anon:
        missing = vcreate(anon, BODY)
        assert missing.status_code == 401
        assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    with fresh_app.client(headers={"Authorization": "Bearer ya29.x"}) as bad:
        refused = vcreate(bad, BODY)
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == (
            "API key not valid. Please pass a valid API key."
        )

    # Alice creates with a Bearer token and polls with x-goog-api-key: the same owner.
    with fresh_app.client(headers={"Authorization": f"Bearer {alice}"}) as a:
        name = vcreate(a, BODY).json()["name"]
    fresh_app.run(op_id(name))
    with fresh_app.client(headers={"x-goog-api-key": alice}) as a:
        op = vwait(a, name)
        assert op["response"]["videos"][0]["bytesBase64Encoded"]
        assert a.get(f"/v1/{name}").status_code == 200

    # Bob sees nothing of it, by either header, by either poll.
    for headers in ({"Authorization": f"Bearer {bob}"}, {"x-goog-api-key": bob}):
        with fresh_app.client(headers=headers) as b:
            assert vfetch(b, name).status_code == 404
            assert b.get(f"/v1/{name}").status_code == 404
    with fresh_app.client() as anon:
        assert (
            anon.post(
                f"{model_path()}:fetchPredictOperation", json={"operationName": name}
            ).status_code
            == 401
        )
