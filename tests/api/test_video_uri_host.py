"""Video uris are not built on an untrusted `Host` header (issue 31, item 10).

A uri in a finished operation is handed to every later poll and followed by SDKs with their
API key; built on a forged Host it would send those downloads elsewhere. Checked over a real
socket (the bound address is what `cinegen serve` accepted the connection on).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.requests import Request

from cinegen.api.hosts import host_is_trusted, public_base
from cinegen.settings import Settings
from tests.helpers import wait_done
from tests.support.server import ServerProcess

CREATE = "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
BODY = {"instances": [{"prompt": "a fox"}], "parameters": {"durationSeconds": 4}}


def _request(host: str, server: tuple[str, int] | None = ("10.0.0.5", 8000)) -> Request:
    scope = {
        "type": "http",
        "scheme": "http",
        "method": "GET",
        "path": "/v1beta/operations/x",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "server": server,
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("host", "allowed", "trusted"),
    [
        ("localhost", "", True),
        ("127.0.0.7", "", True),
        ("[::1]", "", True),
        ("evil.example", "", False),
        ("veo.lan", "veo.lan", True),
        ("VEO.LAN.", "veo.lan", True),
        ("a.example.com", ".example.com", True),
        ("example.com", ".example.com", True),
        ("badexample.com", ".example.com", False),
        ("anything.example", "*", True),
        ("10.0.0.5", "veo.lan, 10.0.0.6", False),
    ],
)
def test_which_hosts_are_trusted(host: str, allowed: str, trusted: bool) -> None:
    assert host_is_trusted(host, allowed) is trusted


def test_an_untrusted_host_gets_the_bound_address() -> None:
    settings = Settings(_env_file=None)
    assert public_base(_request("evil.example:666"), settings) == "http://10.0.0.5:8000"
    assert public_base(_request("localhost:8000"), settings) == "http://localhost:8000"
    assert public_base(_request("evil.example", ("::1", 80)), settings) == "http://[::1]"
    listed = Settings(_env_file=None, allowed_hosts="veo.lan")
    assert public_base(_request("veo.lan:8000"), listed) == "http://veo.lan:8000"
    fixed = Settings(_env_file=None, public_url="https://veo.example.com/")
    assert public_base(_request("evil.example"), fixed) == "https://veo.example.com"


def test_a_forged_host_does_not_reach_a_video_uri(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=server.url, headers={"Host": "evil.example"}) as c:
            name = c.post(CREATE, json=BODY).raise_for_status().json()["name"]
            op = wait_done(c, name)
            uri = op["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
            file_id = uri.rsplit("/", 1)[-1].split(":", 1)[0]
            meta = c.get(f"/v1beta/files/{file_id}").raise_for_status().json()
        assert uri.startswith(f"{server.url}/v1beta/files/"), uri
        assert meta["uri"].startswith(f"{server.url}/v1beta/files/"), meta
        with httpx.Client(headers={"Host": "localhost"}) as c:  # a loopback Host is kept
            polled = c.get(f"{server.url}/v1beta/{name}").json()
        sample = polled["response"]["generateVideoResponse"]["generatedSamples"][0]
        assert sample["video"]["uri"].startswith("http://localhost/v1beta/files/")
    finally:
        server.stop()
