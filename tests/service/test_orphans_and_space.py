"""Start-up sweep of what killed processes left, the free-space threshold, and the data dir's
privacy (issue 31, items 3 and 10), on the in-process app."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

import pytest

from cinegen.store.blobs import StorageFull
from tests.helpers import b64, png_bytes, submit
from tests.support.app import in_process, op_id


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def age(*paths: Path, seconds: float = 7 * 3600) -> None:
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def image_request() -> dict:
    image = {"bytesBase64Encoded": b64(png_bytes()), "mimeType": "image/png"}
    return {"instances": [{"prompt": "a red card", "image": image}]}


def test_data_dir_is_0700_and_database_and_blobs_0600(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with in_process(data, workers=0) as app, app.client() as client:
        name = submit(client, image_request())
        app.run(op_id(name))
    assert mode(data) == 0o700
    assert mode(data / "cinegen.db") == 0o600
    files = data / "files"
    stored = [p for p in files.rglob("*") if p.is_file()]
    assert any(p.suffix == ".mp4" for p in stored) and any("inputs" in p.parts for p in stored)
    assert {mode(p) for p in stored} == {0o600}
    assert {mode(p) for p in files.rglob("*") if p.is_dir()} | {mode(files)} == {0o700}


def test_start_up_sweeps_scratch_partial_writes_and_orphan_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    data = tmp_path / "data"
    with in_process(data, workers=0) as app, app.client() as client:
        kept_op = op_id(submit(client, image_request()))
    files = data / "files"
    kept_inputs = files / "inputs" / kept_op
    # What a killed worker left: an old scratch dir (and its frames), an old body file, a
    # partial blob write, inputs of an operation whose row was never written.
    old_scratch = temp / "cinegen-k1ll3d"
    old_scratch.mkdir()
    (old_scratch / "frames.raw").write_bytes(b"x")
    old_body = temp / "cinegen-body-k1ll3d"
    old_body.write_bytes(b"{}")
    orphan = files / "inputs" / "0123456789abcdef"
    orphan.mkdir(parents=True)
    (orphan / "source.png").write_bytes(b"png")
    part = files / "videos" / "feedface.mp4.part"
    part.parent.mkdir(exist_ok=True)
    part.write_bytes(b"partial")
    age(old_scratch / "frames.raw", old_scratch, old_body, orphan / "source.png", orphan, part)
    age(*kept_inputs.iterdir(), kept_inputs)
    # What is in use, or not ours: left alone.
    live_scratch = temp / "cinegen-live"
    live_scratch.mkdir()
    fresh_orphan = files / "inputs" / "fedcba9876543210"
    fresh_orphan.mkdir()
    (fresh_orphan / "source.png").write_bytes(b"submit in flight")
    fresh_part = files / "videos" / "cafe.mp4.part"
    fresh_part.write_bytes(b"write in flight")
    not_ours = temp / "other-tool-dir"
    not_ours.mkdir()
    age(not_ours)

    with in_process(data, workers=0) as app:
        assert app.db.get_operation(kept_op) is not None
    assert not old_scratch.exists() and not old_body.exists()
    assert not orphan.exists() and not part.exists()
    assert kept_inputs.is_dir() and any(kept_inputs.iterdir())
    assert live_scratch.exists() and fresh_orphan.exists() and fresh_part.exists()
    assert not_ours.exists()


def test_check_free_space_refuses_under_the_threshold(tmp_path: Path) -> None:
    with in_process(tmp_path / "data", workers=0, min_free_bytes=1 << 62) as app:
        files = app.runtime.service.files
        with pytest.raises(StorageFull) as caught:
            files.check_free_space()
        assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"
        assert "storage is full" in caught.value.message and "MiB free" in caught.value.message
    with in_process(tmp_path / "data", workers=0, min_free_bytes=0) as app:
        app.runtime.service.files.check_free_space()  # 0: no check
    with in_process(tmp_path / "data", workers=0, min_free_bytes=1) as app:
        app.runtime.service.files.check_free_space()
        assert app.settings.min_free_bytes == 1
