"""API keys: open with none configured; with keys, 401 / 403 and per-key visibility.

The gate is HTTP semantics, so the app runs in this process (`fresh_app`) with keys stored as
`cinegen keys create` stores them; the CLI itself makes keys in tests/cli and for the Vertex
SDK in tests/clients. Refusing a public bind is `cinegen serve`'s, so that runs the CLI.
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import create, sample_uris, wait_done
from tests.support.app import InProcessServer, op_id
from tests.support.server import REPO, ServerProcess


def test_keys_gate_requests_and_separate_owners(fresh_app: InProcessServer) -> None:
    alice, bob = fresh_app.add_key(), fresh_app.add_key()
    assert alice != bob and alice.startswith("cg-")
    body = {"instances": [{"prompt": "keys"}], "parameters": {"durationSeconds": 4}}

    with fresh_app.client() as anon:
        missing = create(anon, body)
        assert missing.status_code == 401
        assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    with fresh_app.client(headers={"x-goog-api-key": "wrong"}) as wrong:
        refused = create(wrong, body)
        assert refused.status_code == 403
        assert (
            refused.json()["error"]["message"] == "API key not valid. Please pass a valid API key."
        )

    with fresh_app.client(headers={"x-goog-api-key": alice}) as a:
        name = create(a, body).json()["name"]
        fresh_app.run(op_id(name))
        op = wait_done(a, name)
        uri = sample_uris(op)[0]
        assert a.get(uri).status_code == 200
        assert [o["name"] for o in a.get("/v1beta/operations").json()["operations"]] == [name]

    # Bob, with a Bearer token and with ?key=, sees none of it.
    with fresh_app.client(headers={"Authorization": f"Bearer {bob}"}) as b:
        assert b.get(f"/v1beta/{name}").status_code == 404
        assert b.get(uri).status_code == 404
        assert b.get("/v1beta/operations").json()["operations"] == []
    with fresh_app.client() as c:
        assert c.get(f"/v1beta/{name}", params={"key": bob}).status_code == 404
        assert c.get(f"/v1beta/{name}", params={"key": alice}).status_code == 200


def test_refuses_public_bind_without_keys(tmp_path) -> None:  # noqa: ANN001
    server = ServerProcess(tmp_path / "open", env_extra={"CINEGEN_HOST": "0.0.0.0"})
    server.data_dir.mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "serve"],
        env={**server.env(), "CINEGEN_HOST": "0.0.0.0"},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
