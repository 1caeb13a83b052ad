"""Memory a Vertex request can cost (issue 31, item 2): a finished operation's poll body, with
its MP4s inline as base64, is made once and streamed to every poll after; an image larger
than any output can use is refused from its header, before a pixel is decoded."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import ImageFile

from cinegen.api.vertex.routes import POLL_BODY
from cinegen.api.vertex.translate import render_operation
from tests.api.vertex.support import vcreate, vfetch
from tests.media.images import solid_png
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.engines import ScriptedEngine

BODY = {"instances": [{"prompt": "A lighthouse at dusk"}], "parameters": {"durationSeconds": 4}}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcessServer]:
    engine = ScriptedEngine(frames=6)
    with in_process(tmp_path / "data", workers=0, engines={"preview": engine}) as server:
        yield server


def _finished(app: InProcessServer, client: httpx.Client, body: dict) -> str:
    created = vcreate(client, body)
    assert created.status_code == 200, created.text
    name = created.json()["name"]
    app.run(op_id(name))
    return name


class _Counting:
    """Counts the FileService calls that read a video's bytes."""

    def __init__(self, app: InProcessServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        files = app.runtime.service.files
        for method in ("open_file", "read_file"):
            original = getattr(files, method)

            def counted(*args, _original=original, **kwargs):  # noqa: ANN002, ANN003, ANN202
                self.calls += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(files, method, counted)


def test_polls_of_a_finished_operation_share_one_stored_body(
    app: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.client() as client:
        name = _finished(app, client, {**BODY, "parameters": {"sampleCount": 2}})
        op = app.runtime.service.get(op_id(name), None)
        files = app.runtime.service.files
        expected = json.dumps(
            render_operation(op, lambda s: files.read_file(s.file_id, None)),
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        reads = _Counting(app, monkeypatch)

        first = vfetch(client, name)
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "application/json"
        assert reads.calls == 2  # each sample read once, to write the body
        key = f"derived/{op.samples[0].file_id}/{POLL_BODY}"
        assert files.blobs.exists(key)

        second = vfetch(client, name)
        by_get = client.get(f"/v1/{name}")
        assert reads.calls == 2  # neither poll read or encoded a video again
        assert first.content == second.content == by_get.content == expected
        assert int(first.headers["content-length"]) == len(expected)
        videos = first.json()["response"]["videos"]
        assert [len(base64.b64decode(v["bytesBase64Encoded"])) for v in videos] == [
            s.size_bytes for s in op.samples
        ]


def test_an_expired_video_still_answers_404_and_drops_the_stored_body(
    app: InProcessServer,
) -> None:
    with app.client() as client:
        name = _finished(app, client, BODY)
        assert vfetch(client, name).status_code == 200
        files = app.runtime.service.files
        op = app.runtime.service.get(op_id(name), None)
        key = f"derived/{op.samples[0].file_id}/{POLL_BODY}"
        assert files.blobs.exists(key)
        files.discard_operation(op.id)
        assert not files.blobs.exists(key)
        gone = vfetch(client, name)
        assert gone.status_code == 404, gone.text
        assert gone.json()["error"]["status"] == "NOT_FOUND"


def test_an_image_larger_than_any_output_is_refused_from_its_header(
    app: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's 243 KB PNG of 7999x7999 (64 Mpx, 2.3 GB once decoded): a 400 at submit,
    and no pixel decoded."""
    data = solid_png(7999, 7999)
    assert len(data) < 400_000
    decoded: list[object] = []

    def load(self: ImageFile.ImageFile):  # noqa: ANN202
        decoded.append(self)
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    image = {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": "image/png"}
    body = {"instances": [{"prompt": "Animate", "image": image}], "parameters": BODY["parameters"]}
    with app.client() as client:
        refused = vcreate(client, body)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert "7999x7999" in error["message"] and "too large" in error["message"]
    assert decoded == []
