"""The google-genai SDK (2.34, the dev extra's) against `cinegen serve` at a key's
concurrent limit: its own retry of a 429 (HttpRetryOptions retries 429 by default once any
retry options are set; without them it does not retry) makes no duplicate operation, as a
refused create keeps nothing. A proxy in front counts the tries that reached the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.api.videos.support import FlakyProxy
from tests.support.server import ServerProcess

MODEL = "veo-3.1-fast-generate-preview"
CONFIG = types.GenerateVideosConfig(duration_seconds=4)
QUOTA = "Resource has been exhausted (e.g. check quota)."


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[ServerProcess]:
    """No key (the anonymous owner), no worker: operations stay queued; 1 at once."""
    server = ServerProcess(
        tmp_path / "capped",
        env_extra={"CINEGEN_WORKERS": "0", "CINEGEN_MAX_QUEUED_PER_KEY": "1"},
    )
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


def sdk(base_url: str, attempts: int) -> genai.Client:
    retry = types.HttpRetryOptions(attempts=attempts, initial_delay=0.05, max_delay=0.1)
    options = types.HttpOptions(
        base_url=base_url, retry_options=retry, client_args={"trust_env": False}
    )
    return genai.Client(api_key="anything", http_options=options)


def operation_count(server: ServerProcess) -> int:
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as http:
        listed = http.get("/v1beta/operations", params={"pageSize": 100})
    assert listed.status_code == 200, listed.text
    return len(listed.json().get("operations", []))


def test_the_sdks_retries_of_a_429_create_nothing(capped: ServerProcess) -> None:
    with FlakyProxy(capped.url, failures=0, create_suffix=":predictLongRunning") as proxy:
        client = sdk(proxy.url, attempts=3)
        first = client.models.generate_videos(
            model=MODEL, source=types.GenerateVideosSource(prompt="fills the limit"), config=CONFIG
        )
        assert first.name
        with pytest.raises(errors.ClientError) as refused:
            client.models.generate_videos(
                model=MODEL, source=types.GenerateVideosSource(prompt="over it"), config=CONFIG
            )
    assert refused.value.code == 429 and refused.value.status == "RESOURCE_EXHAUSTED"
    assert str(refused.value.message).startswith(QUOTA)
    assert len(proxy.creates) == 1 + 3  # the SDK did retry the 429, twice
    assert operation_count(capped) == 1  # and none of its tries made an operation
