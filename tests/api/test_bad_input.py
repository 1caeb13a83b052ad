"""Bad input never reaches a 500: each case answers 4xx in the Google envelope.

HTTP semantics only, so the app runs in this process (`app_server`, tests/support/app.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import b64, png_bytes
from tests.support.app import InProcessServer

URL = "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"


@pytest.fixture
def client(app_server: InProcessServer) -> Iterator[httpx.Client]:
    with app_server.client() as c:
        yield c


def assert_envelope(response: httpx.Response, code: int, contains: str) -> None:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["status"], str) and error["status"]
    assert contains in error["message"], error["message"]
    assert "Traceback" not in response.text


def test_malformed_json(client: httpx.Client) -> None:
    response = client.post(
        URL, content=b'{"instances": [', headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400, "Invalid JSON payload received")


def test_missing_instances(client: httpx.Client) -> None:
    assert_envelope(client.post(URL, json={"parameters": {}}), 400, "instances")


def test_prompt_of_wrong_type(client: httpx.Client) -> None:
    response = client.post(URL, json={"instances": [{"prompt": 5}]})
    assert_envelope(response, 400, "Invalid value at 'instances[0].prompt' (TYPE_STRING), 5")


def test_duration_as_string(client: httpx.Client) -> None:
    response = client.post(
        URL, json={"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": "8"}}
    )
    assert_envelope(response, 400, "The value type for `durationSeconds` needs to be a number.")


def _image(data: bytes | str) -> dict:
    return {
        "bytesBase64Encoded": data if isinstance(data, str) else b64(data),
        "mimeType": "image/png",
    }


BAD_MEDIA = {
    "base64_that_is_not_base64": ({"image": _image("%%%not base64%%%")}, "Base64 decoding failed"),
    "image_that_is_not_an_image": ({"image": _image(b"hello, not a png" * 10)}, "image"),
    "pil_image_sent_as_empty_object": ({"image": {}}, "types.Image"),
    "mp4_that_is_not_an_mp4": (
        {
            "video": {
                "encodedVideo": b64(b"\0\0\0\x18ftypmp42 but not really"),
                "encoding": "video/mp4",
            }
        },
        "video",
    ),
    "video_uri_this_server_never_issued": (
        {"video": {"uri": "https://example.invalid/v1beta/files/abc123:download?alt=media"}},
        "Video URI not found in the request.",
    ),
    "video_uri_that_cannot_be_parsed": (
        {"video": {"uri": "files/%%%"}},
        "Could not parse the file name",
    ),
}


def test_25_mb_image(client: httpx.Client) -> None:
    """Built in the test, not in the table: 25 MB at collection time would be paid by every run."""
    big = _image(png_bytes(64, 64) + b"\0" * (25 * 1024 * 1024))
    response = client.post(URL, json={"instances": [{"prompt": "x", "image": big}]})
    assert_envelope(response, 400, "20 MB")


@pytest.mark.parametrize("case", list(BAD_MEDIA))
def test_bad_media_in_the_instance(client: httpx.Client, case: str) -> None:
    fields, message = BAD_MEDIA[case]
    response = client.post(URL, json={"instances": [{"prompt": "x", **fields}]})
    assert_envelope(response, 400, message)


@pytest.mark.parametrize(
    "path",
    [
        "/v1beta/models/veo-3.1-generate-preview/operations/doesnotexist",
        "/v1beta/operations/0123456789abcdef",
        "/v1beta/operations/..%2F..%2Fetc%2Fpasswd",
        "/v1beta/files/0123456789abcdef:download?alt=media",
        "/v1beta/files/..%2F..%2Fcinegen.db:download?alt=media",
        "/v1beta/files/../../cinegen.db:download?alt=media",
        "/v1beta/files/%2e%2e/%2e%2e/server.log:download?alt=media",
    ],
)
def test_unknown_ids_and_path_tricks(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["status"] in ("NOT_FOUND", "INVALID_ARGUMENT")


def test_unknown_route_and_version(client: httpx.Client) -> None:
    assert_envelope(client.get("/v9/models"), 404, "Method not found.")
    assert_envelope(client.put(URL, json={}), 405, "not allowed")


def test_bad_page_token(client: httpx.Client) -> None:
    assert_envelope(
        client.get("/v1beta/operations", params={"pageToken": "!!!"}), 400, "page token"
    )
