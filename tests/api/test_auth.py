"""API keys: open with none configured; with keys, 401 / 403 and per-key visibility."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.helpers import create, sample_uris, wait_done
from tests.support.server import REPO, ServerProcess, create_key


def test_keys_gate_requests_and_separate_owners(fresh_server: ServerProcess) -> None:
    fresh_server.data_dir.mkdir(parents=True)
    alice, bob = create_key(fresh_server), create_key(fresh_server)
    assert alice != bob and alice.startswith("cg-")
    fresh_server.start()
    url = fresh_server.url
    body = {"instances": [{"prompt": "keys"}], "parameters": {"durationSeconds": 4}}

    with httpx.Client(base_url=url, timeout=60) as anon:
        missing = create(anon, body)
        assert missing.status_code == 401
        assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    with httpx.Client(base_url=url, timeout=60, headers={"x-goog-api-key": "wrong"}) as wrong:
        refused = create(wrong, body)
        assert refused.status_code == 403
        assert (
            refused.json()["error"]["message"] == "API key not valid. Please pass a valid API key."
        )

    with httpx.Client(base_url=url, timeout=60, headers={"x-goog-api-key": alice}) as a:
        name = create(a, body).json()["name"]
        op = wait_done(a, name)
        uri = sample_uris(op)[0]
        assert a.get(uri).status_code == 200
        assert [o["name"] for o in a.get("/v1beta/operations").json()["operations"]] == [name]

    # Bob, with a Bearer token and with ?key=, sees none of it.
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {bob}"}) as b:
        assert b.get(f"/v1beta/{name}").status_code == 404
        assert b.get(uri).status_code == 404
        assert b.get("/v1beta/operations").json()["operations"] == []
    assert httpx.get(f"{url}/v1beta/{name}", params={"key": bob}).status_code == 404
    assert httpx.get(f"{url}/v1beta/{name}", params={"key": alice}).status_code == 200


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
