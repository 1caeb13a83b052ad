"""HTTP details of the Google surface (issue 31, item 10): a 405 is the Google envelope and
names what is allowed in `Allow`; HEAD answers a download with its headers and no body; a bad
Range answers in the envelope or is ignored, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import sample_uris, submit, text_request
from tests.support.app import InProcessServer, in_process, op_id


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with in_process(tmp_path_factory.mktemp("app"), workers=0) as server:
        yield server


@pytest.fixture(scope="module")
def client(app: InProcessServer) -> Iterator[httpx.Client]:
    with app.client() as client:
        yield client


@pytest.fixture(scope="module")
def video(app: InProcessServer, client: httpx.Client) -> tuple[str, bytes]:
    """A finished video's download uri (path and query) and its bytes."""
    name = submit(client, text_request("a red ball"))
    app.run(op_id(name))
    uri = sample_uris(client.get(f"/v1beta/{name}").json())[0]
    path = httpx.URL(uri).raw_path.decode()
    body = client.get(path)
    assert body.status_code == 200
    return path, body.content


def _is_envelope(response: httpx.Response, code: int) -> None:
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["status"]


def test_405_is_the_envelope_and_sends_allow(
    client: httpx.Client, video: tuple[str, bytes]
) -> None:
    uri, _ = video
    refused = client.delete(uri)
    assert refused.status_code == 405
    _is_envelope(refused, 405)
    assert refused.json()["error"]["status"] == "METHOD_NOT_ALLOWED"
    assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_405_allow_lists_every_route_of_the_path(client: httpx.Client) -> None:
    # An operation is read with GET and removed with DELETE: both routes count.
    refused = client.put("/v1beta/operations/0123456789abcdef")
    assert refused.status_code == 405
    _is_envelope(refused, 405)
    assert {"GET", "DELETE"} <= set(refused.headers["allow"].split(", "))


def test_head_on_a_download_gives_the_headers_and_no_body(
    client: httpx.Client, video: tuple[str, bytes]
) -> None:
    uri, full = video
    head = client.head(uri)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(full))
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-type"] == "video/mp4"
    part = client.head(uri, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == b""
    assert part.headers["content-range"] == f"bytes 10-99/{len(full)}"
    assert part.headers["content-length"] == "90"


def test_head_on_file_metadata_and_on_a_missing_file(
    client: httpx.Client, video: tuple[str, bytes]
) -> None:
    uri, _ = video
    metadata_path = uri.split(":download")[0]
    assert client.get(metadata_path).status_code == 200
    head = client.head(metadata_path)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(client.get(metadata_path).content)
    assert client.head("/v1beta/files/0123456789abcdef:download?alt=media").status_code == 404


@pytest.mark.parametrize(
    "header",
    ["bytes=abc", "items=0-5", "bytes=5-2", "bytes=0-1,5-6", "bytes", "bytes=-", "bytes=1-2-3"],
)
def test_a_malformed_range_is_ignored(
    client: httpx.Client, video: tuple[str, bytes], header: str
) -> None:
    uri, full = video
    response = client.get(uri, headers={"Range": header})
    assert response.status_code == 200
    assert response.content == full


def test_an_unsatisfiable_range_is_416_in_the_envelope(
    client: httpx.Client, video: tuple[str, bytes]
) -> None:
    uri, full = video
    for header in (f"bytes={len(full)}-", "bytes=-0", "bytes=" + "9" * 5000 + "-"):
        response = client.get(uri, headers={"Range": header})
        assert response.status_code == 416, header
        _is_envelope(response, 416)
        assert response.headers["content-range"] == f"bytes */{len(full)}"
        head = client.head(uri, headers={"Range": header})
        assert head.status_code == 416 and head.content == b""


def test_huge_range_numbers_are_clamped_not_500(
    client: httpx.Client, video: tuple[str, bytes]
) -> None:
    uri, full = video
    tail = client.get(uri, headers={"Range": "bytes=-" + "9" * 5000})
    assert tail.status_code == 206 and tail.content == full
    rest = client.get(uri, headers={"Range": "bytes=100-" + "9" * 5000})
    assert rest.status_code == 206 and rest.content == full[100:]
