"""Hostile-but-fair bodies (issue 31, items 2, 5 and 9): each is refused in the Google
envelope with a 4xx, never a 500, and nothing is buffered past the body limit.

- a chunked body (no Content-Length) over the limit stops being read at the limit: 413;
- JSON nested 1 000 deep, integers over Python's 4 300-digit limit (in JSON, in `size`, in
  Gemini's `pageSize`, in a form index), `metadata[seed]` of 5 000 nines, a form field name
  500 brackets deep: 400;
- a lone surrogate (`"\\ud800"`, valid JSON) in any string of any dialect: 400 at parse time,
  and that key's lists still answer 200.

The app runs in this process (tests/support/app.py); the streaming tests drive
`httpx.ASGITransport` on the app's own event loop, so the body really arrives in chunks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.app import InProcessServer, in_process

GEMINI = "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
VERTEX = (
    "/v1/projects/p/locations/us-central1/publishers/google/models/"
    "veo-3.1-generate-preview:predictLongRunning"
)
VIDEOS = "/v1/videos"
MODEL = "veo-3.1-generate-preview"
LIMIT = 64 * 1024
CHUNK = 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with in_process(tmp_path_factory.mktemp("hostile"), workers=0, max_request_bytes=LIMIT) as s:
        yield s


@pytest.fixture(scope="module")
def key(server: InProcessServer) -> str:
    return server.add_key("hostile")


@pytest.fixture
def client(server: InProcessServer, key: str) -> Iterator[httpx.Client]:
    with server.client(headers={"x-goog-api-key": key}) as c:
        yield c


def assert_refused(response: httpx.Response, code: int, contains: str = "") -> None:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["status"], error
    assert contains in error["message"], error["message"]


# ------------------------------------------------------------------ the limit, while streaming


def _post_streamed(
    server: InProcessServer,
    key: str,
    path: str,
    content_type: str,
    head: bytes,
    total: int,
    chunk: int = CHUNK,
) -> tuple[httpx.Response, int]:
    """POST `head` then filler up to `total` bytes in 1 KiB chunks, with no Content-Length;
    returns the response and how many bytes the app pulled from the body."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        pulled += len(head)
        yield head
        while pulled < total:
            pulled += chunk
            yield b"a" * chunk

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=server.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=server.url) as c:
            response = await c.post(
                path,
                content=body(),
                headers={"x-goog-api-key": key, "content-type": content_type},
            )
            await response.aread()
            return response

    response = server.portal.call(post)
    return response, pulled


STREAMED = {
    "gemini_json": (GEMINI, "application/json", b'{"instances": [{"prompt": "'),
    "vertex_json": (VERTEX, "application/json", b'{"instances": [{"prompt": "'),
    "videos_json": (
        VIDEOS,
        "application/json",
        b'{"model": "veo-3.1-generate-preview", "prompt": "',
    ),
    "videos_urlencoded": (VIDEOS, "application/x-www-form-urlencoded", b"prompt="),
    "videos_multipart_field": (
        VIDEOS,
        "multipart/form-data; boundary=b0",
        b'--b0\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n',
    ),
    "videos_multipart_file": (
        VIDEOS,
        "multipart/form-data; boundary=b0",
        b'--b0\r\nContent-Disposition: form-data; name="input_reference"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n",
    ),
}


@pytest.mark.parametrize("case", list(STREAMED))
def test_chunked_body_over_the_limit_stops_at_the_limit(
    server: InProcessServer, key: str, case: str
) -> None:
    path, content_type, head = STREAMED[case]
    total = 64 * LIMIT  # 4 MiB offered; the app may read the limit and one chunk more
    response, pulled = _post_streamed(server, key, path, content_type, head, total)
    assert_refused(response, 413, "exceeds the limit")
    assert pulled <= LIMIT + 4 * CHUNK, f"read {pulled} bytes of a body limited to {LIMIT}"


def test_chunked_body_under_the_limit_is_served(server: InProcessServer, key: str) -> None:
    head = json.dumps({"instances": [{"prompt": "a fox " * 100}]}).encode()
    response, pulled = _post_streamed(server, key, GEMINI, "application/json", head, 0)
    assert response.status_code == 200, response.text
    assert pulled == len(head)


def test_uploaded_file_is_capped_at_20_mb_while_it_streams(tmp_path: Path) -> None:
    """Under the 160 MiB body limit, an uploaded image stops at Veo's 20 MB image cap."""
    head = (
        b'--b0\r\nContent-Disposition: form-data; name="input_reference"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    cap, chunk = 20 * 1024 * 1024, 64 * 1024
    with in_process(tmp_path, workers=0) as server:
        key = server.add_key()
        response, pulled = _post_streamed(
            server, key, VIDEOS, "multipart/form-data; boundary=b0", head, 2 * cap, chunk
        )
    assert_refused(response, 413, "an uploaded file over 20971520 bytes")
    assert pulled <= cap + 2 * chunk


def test_multipart_file_part_is_capped(client: httpx.Client) -> None:
    response = client.post(
        VIDEOS,
        data={"model": MODEL, "prompt": "a fox"},
        files={"input_reference": ("x.png", b"\x89PNG" + b"\0" * LIMIT, "image/png")},
    )
    assert_refused(response, 413, "exceeds the limit")


# ------------------------------------------------------------ malformed input: 400, not 500

DEEP = 1000
NINES = "9" * 5000


def _nested_json(depth: int) -> bytes:
    return ('{"instances": [{"prompt": "x", "mask": ' + "[" * depth + "]" * depth + "}]}").encode()


@pytest.mark.parametrize("path", [GEMINI, VERTEX])
@pytest.mark.parametrize(
    "body",
    [
        _nested_json(DEEP),
        _nested_json(150),  # parses in Python, deeper than Google's parser takes
        ('{"instances": [{"prompt": "x"}], "parameters": {"seed": ' + NINES + "}}").encode(),
    ],
    ids=["nested_1000", "nested_150", "int_5000_digits"],
)
def test_malformed_json_is_a_400(client: httpx.Client, path: str, body: bytes) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_refused(response, 400, "Invalid JSON payload received")


def test_malformed_videos_json_is_a_400(client: httpx.Client) -> None:
    for body in (
        (
            '{"model": "' + MODEL + '", "prompt": "x", "metadata": ' + "[" * DEEP + "]" * DEEP + "}"
        ).encode(),
        ('{"model": "' + MODEL + '", "prompt": "x", "metadata": {"seed": ' + NINES + "}}").encode(),
    ):
        response = client.post(VIDEOS, content=body, headers={"content-type": "application/json"})
        assert_refused(response, 400, "Invalid JSON payload received")


def test_size_of_5000_digits_is_a_400(client: httpx.Client) -> None:
    for size in (NINES + "x720", "1280x" + NINES):
        assert_refused(
            client.post(VIDEOS, json={"model": MODEL, "prompt": "x", "size": size}), 400, "size"
        )
        assert_refused(
            client.post(VIDEOS, data={"model": MODEL, "prompt": "x", "size": size}), 400, "size"
        )  # form too


@pytest.mark.parametrize("size", [NINES, "²", "١٢"], ids=["5000_nines", "superscript", "arabic"])
def test_page_size_that_is_no_int32_is_a_400(client: httpx.Client, size: str) -> None:
    response = client.get("/v1beta/operations", params={"pageSize": size})
    assert_refused(response, 400, "page_size")


@pytest.mark.parametrize("limit", [NINES, "²", "١٢"], ids=["5000_nines", "superscript", "arabic"])
def test_videos_list_limit_that_is_no_ascii_number_is_a_400(
    client: httpx.Client, limit: str
) -> None:
    assert_refused(client.get(VIDEOS, params={"limit": limit}), 400, "limit")


def _form(extra: dict[str, str]) -> dict[str, str]:
    return {"model": MODEL, "prompt": "x", **extra}


# case: (fields, what the 400 says)
FORMS = {
    "index_of_5000_digits": (
        _form({f"metadata[referenceImages][{NINES}][referenceType]": "asset"}),
        "",  # multipart's own header parser already refuses a name this long
    ),
    "index_of_4400_digits": (
        _form({f"metadata[referenceImages][{'9' * 4400}][x]": "asset"}),
        "",
    ),
    "index_of_superscript_digit": (
        _form({"metadata[referenceImages][²][x]": "asset"}),
        "an index is at most 9999",
    ),
    "seed_of_5000_nines": (_form({"metadata[seed]": NINES}), "'metadata.seed'"),
    "seed_of_400_nines": (_form({"metadata[seed]": "9" * 400}), "'metadata.seed'"),
    "name_500_brackets_deep": (_form({"metadata" + "[a]" * 500: "1"}), "levels of brackets"),
    "name_500_open_brackets": (_form({"metadata" + "[" * 500: "1"}), "levels of brackets"),
    "metadata_json_nested_1000": (
        _form({"metadata": '{"a": ' + "[" * DEEP + "]" * DEEP + "}"}),
        "Invalid JSON payload received",
    ),
    "metadata_json_int_5000_digits": (
        _form({"metadata": '{"seed": ' + NINES + "}"}),
        "Invalid JSON payload received",
    ),
}


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
@pytest.mark.parametrize("case", list(FORMS))
def test_malformed_form_is_a_400(client: httpx.Client, case: str, encoding: str) -> None:
    fields, says = FORMS[case]
    if encoding == "multipart":
        response = client.post(VIDEOS, files={name: (None, v) for name, v in fields.items()})
    else:
        response = client.post(VIDEOS, data=fields)
    assert_refused(response, 400, says)
    # The connection's next request (a pooled client's) is served.
    assert client.get(VIDEOS).status_code == 200


def test_form_seed_still_coerced(client: httpx.Client) -> None:
    """The fix keeps the SDK's strings working: `"7"` and `"7.0"` are the number 7."""
    for seed in ("7", "7.0", "+7"):
        response = client.post(
            VIDEOS, data={"model": MODEL, "prompt": "a fox", "metadata[seed]": seed}
        )
        assert response.status_code == 200, response.text


# --------------------------------------------------------------- lone surrogates: 400 at parse


SURROGATE_JSON = {
    "gemini_prompt": (GEMINI, b'{"instances": [{"prompt": "a fox \\ud800"}]}'),
    "gemini_negative_prompt": (
        GEMINI,
        b'{"instances": [{"prompt": "a"}], "parameters": {"negativePrompt": "\\udfff"}}',
    ),
    "gemini_key": (GEMINI, b'{"instances": [{"prompt": "a", "\\ud800": 1}]}'),
    "gemini_raw_bytes": (GEMINI, b'{"instances": [{"prompt": "a \xed\xa0\x80"}]}'),
    "vertex_prompt": (VERTEX, b'{"instances": [{"prompt": "a fox \\ud800"}]}'),
    "vertex_label": (
        VERTEX,
        b'{"instances": [{"prompt": "a"}], "labels": {"team": "\\ud800"}}',
    ),
    "videos_prompt": (VIDEOS, b'{"model": "veo-3.1-generate-preview", "prompt": "a fox \\ud800"}'),
    "videos_metadata": (
        VIDEOS,
        b'{"model": "veo-3.1-generate-preview", "prompt": "a", "metadata": {"negativePrompt": "\\ud800"}}',
    ),
}


def _assert_lists_answer(client: httpx.Client) -> None:
    assert client.get("/v1beta/operations").status_code == 200
    assert client.get(VIDEOS).status_code == 200


@pytest.mark.parametrize("case", list(SURROGATE_JSON))
def test_lone_surrogate_in_json_is_a_400(client: httpx.Client, case: str) -> None:
    path, body = SURROGATE_JSON[case]
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_refused(response, 400, "Invalid UTF-8 in string.")
    _assert_lists_answer(client)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_lone_surrogate_in_a_form_json_field_is_a_400(client: httpx.Client, encoding: str) -> None:
    fields = {"model": MODEL, "prompt": "a fox", "metadata": '{"negativePrompt": "\\ud800"}'}
    if encoding == "multipart":
        response = client.post(VIDEOS, files={k: (None, v) for k, v in fields.items()})
    else:
        response = client.post(VIDEOS, data=fields)
    assert_refused(response, 400, "Invalid UTF-8 in string.")
    _assert_lists_answer(client)


def test_lone_surrogate_in_multipart_utf7_charset_is_a_400(client: httpx.Client) -> None:
    """A declared charset can decode to a lone surrogate too (UTF-7 `+2AA-` is U+D800)."""
    body = (
        b'--b0\r\nContent-Disposition: form-data; name="model"\r\n\r\n' + MODEL.encode() + b"\r\n"
        b'--b0\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na fox +2AA-\r\n--b0--\r\n'
    )
    response = client.post(
        VIDEOS,
        content=body,
        headers={"content-type": "multipart/form-data; boundary=b0; charset=utf-7"},
    )
    assert_refused(response, 400, "Invalid UTF-8 in string.")
    _assert_lists_answer(client)


def test_valid_non_ascii_text_is_accepted(client: httpx.Client) -> None:
    body = {"instances": [{"prompt": "un renard roux au coucher du soleil 🦊"}]}
    assert client.post(GEMINI, json=body).status_code == 200
    _assert_lists_answer(client)
