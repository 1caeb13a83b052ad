"""`Idempotency-Key` through the real google-genai client (Gemini API mode, the 2.34.0 the
dev extra pins), against a real `cinegen serve` with no worker (operations stay queued).

The Vercel AI SDK sends a key on every create and retries; google-genai sends whatever
`http_options.headers` holds on every request, retries included, so it plays both parts here:
the same key twice is one operation, and a create whose answer was lost (a proxy answers 503
after cinegen started the job) and that the client retries is one operation too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.api.videos.support import FlakyProxy, videos_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.xdist_group("idempotency_genai")

MODEL = "veo-3.1-fast-generate-preview"
CONFIG = types.GenerateVideosConfig(duration_seconds=4)


def source(prompt: str) -> types.GenerateVideosSource:
    return types.GenerateVideosSource(prompt=prompt)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with videos_server(tmp_path_factory.mktemp("idempotency_genai"), CINEGEN_WORKERS="0") as srv:
        yield srv


def client(base_url: str, key: str, attempts: int = 1) -> genai.Client:
    retry = types.HttpRetryOptions(
        attempts=attempts, initial_delay=0.05, max_delay=0.2, http_status_codes=[503]
    )
    options = types.HttpOptions(
        base_url=base_url,
        headers={"Idempotency-Key": key},
        retry_options=retry,
        client_args={"trust_env": False},
    )
    return genai.Client(api_key="anything", http_options=options)


def operation_names(srv: ServerProcess) -> list[str]:
    with httpx.Client(base_url=srv.url, timeout=30, trust_env=False) as http:
        listed = http.get("/v1beta/operations", params={"pageSize": 1000})
    assert listed.status_code == 200, listed.text
    return [op["name"] for op in listed.json().get("operations", [])]


def test_same_key_twice_is_one_operation(idle: ServerProcess) -> None:
    sdk = client(idle.url, f"genai-{time.time_ns()}")
    before = set(operation_names(idle))
    first = sdk.models.generate_videos(model=MODEL, source=source("only once"), config=CONFIG)
    again = sdk.models.generate_videos(model=MODEL, source=source("only once"), config=CONFIG)
    assert first.name and again.name == first.name
    assert [n for n in operation_names(idle) if n not in before] == [first.name]
    with pytest.raises(errors.ClientError) as changed:
        sdk.models.generate_videos(model=MODEL, source=source("something else"), config=CONFIG)
    assert changed.value.code == 400
    assert "same parameters" in str(changed.value.message)
    assert sdk.operations.get(first).name == first.name  # and it polls as usual


def test_a_retried_create_that_started_a_job_is_one_operation(idle: ServerProcess) -> None:
    key = f"genai-retry-{time.time_ns()}"
    with FlakyProxy(idle.url, failures=1, create_suffix=":predictLongRunning") as proxy:
        before = set(operation_names(idle))
        sdk = client(proxy.url, key, attempts=3)  # held: a dropped Client closes its httpx
        op = sdk.models.generate_videos(model=MODEL, source=source("retried"), config=CONFIG)
    sent = [{k.lower(): v for k, v in h.items()}.get("idempotency-key") for h in proxy.creates]
    assert sent == [key, key]  # the failed try and the retry, with the same key
    assert [n for n in operation_names(idle) if n not in before] == [op.name]
