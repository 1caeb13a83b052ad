"""The in-process client submits through the Gemini route's own path (`submit_prediction`),
so a body the server refuses is refused here too, with the server's words."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from cinegen.cli.clients import LocalClient
from cinegen.cli.errors import EXIT_FAILED, CliError

if TYPE_CHECKING:
    from tests.support.server import ServerProcess

MODEL = "veo-3.1-generate-preview"


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalClient:
    for name in [n for n in os.environ if n.startswith("CINEGEN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CINEGEN_DATA_DIR", str(tmp_path / "data"))
    return LocalClient()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"prompt": 5}]}, "Invalid value at 'instances[0].prompt' (TYPE_STRING), 5"),
        (
            {"instances": [{"prompt": "a fox"}], "parameters": ["720p"]},
            "Invalid value at 'parameters' (TYPE_MESSAGE), [\"720p\"]",
        ),
        ({"instances": []}, "Invalid JSON payload received. 'instances' must not be empty."),
        ({}, "Invalid JSON payload received. Missing required field 'instances'."),
    ],
)
def test_in_process_refuses_a_malformed_body_as_the_server_does(
    server: ServerProcess, local: LocalClient, body: dict[str, Any], message: str
) -> None:
    served = httpx.post(f"{server.url}/v1beta/models/{MODEL}:predictLongRunning", json=body)
    assert served.status_code == 400
    assert served.json()["error"]["message"] == message

    with local, pytest.raises(CliError) as refused:
        local.create(MODEL, body)
    assert (refused.value.message, refused.value.code) == (message, EXIT_FAILED)
    assert local.list(50) == {"operations": []}, "nothing was submitted"
