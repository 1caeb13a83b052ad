"""Every sample a job makes carries the invisible watermark (README "Invisible watermark"):
its payload is this installation's id and its sample's hash, and maps back to its operation;
`CINEGEN_WATERMARK=false` leaves the pixels unmarked; the same request and seed still give
the same video stream, bit for bit."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import httpx
import pytest

from cinegen.engines.base import RenderSpec
from cinegen.media.clip import Clip
from cinegen.media.watermark import SAMPLE_BITS, detect_watermark
from cinegen.service.watermarks import (
    INSTALLATION_FILE,
    installation_id,
    made_here,
    sample_payload,
    watermark_origin,
)
from cinegen.store.db import Database, WatermarkStore
from tests.helpers import b64, operation, png_bytes, sample_uris, submit, text_request
from tests.media.video_checks import shapes_photo
from tests.support.app import InProcessServer, in_process, op_id


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "data", workers=0) as server:
        yield server


def generated(app: InProcessServer, client: httpx.Client, path: Path, **parameters: object) -> str:
    """Run one 720p text job; its MP4 written to `path`; the operation id."""
    name = submit(client, text_request("a lighthouse on a cliff", resolution="720p", **parameters))
    app.run(op_id(name))
    download = client.get(sample_uris(operation(client, name))[0])
    assert download.status_code == 200, download.text
    path.write_bytes(download.content)
    return op_id(name)


def video_packets(path: Path) -> list[bytes]:
    """The coded pictures (C2PA signing may make the files differ in the signature only)."""
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def test_a_job_makes_a_marked_video_that_maps_back_to_its_operation(
    app: InProcessServer, tmp_path: Path
) -> None:
    with app.client() as client:
        made = generated(app, client, tmp_path / "a.mp4", seed=11)
    reading = detect_watermark(str(tmp_path / "a.mp4"))
    assert reading.found and reading.payload is not None, reading
    assert reading.bit_confidence > 0.99
    assert reading.installation_id == installation_id(app.settings)
    assert made_here(app.settings, reading)
    op = app.db.get_operation(made)
    assert reading.payload == sample_payload(
        installation_id(app.settings), op.model, op.request, op.seed, 0
    )
    origin = watermark_origin(app.db, reading.payload)
    assert [(r.operation_id, r.sample_index) for r in origin] == [(made, 0)]
    key_file = Path(app.settings.data_dir) / INSTALLATION_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_the_same_request_and_seed_give_the_same_bytes_and_payload(
    app: InProcessServer, tmp_path: Path
) -> None:
    with app.client() as client:
        first = generated(app, client, tmp_path / "1.mp4", seed=5)
        second = generated(app, client, tmp_path / "2.mp4", seed=5)
    assert video_packets(tmp_path / "1.mp4") == video_packets(tmp_path / "2.mp4")
    reading = detect_watermark(str(tmp_path / "1.mp4"))
    assert reading.payload is not None
    origin = {r.operation_id for r in watermark_origin(app.db, reading.payload)}
    assert origin == {first, second}


def test_an_image_request_asked_again_gives_the_same_payload(
    app: InProcessServer, tmp_path: Path
) -> None:
    """Each upload of the input image is stored under a key of its own request; the payload
    names the image by its bytes, so asking again gives the same pixels (the playground's
    "copy as Python" promise). Another image gives another payload."""
    body = text_request("a meadow", durationSeconds=4, seed=9)
    readings = []
    with app.client() as client:
        for index, colour in enumerate([(60, 140, 60), (60, 140, 60), (140, 60, 60)]):
            image = {
                "bytesBase64Encoded": b64(png_bytes(640, 360, color=colour)),
                "mimeType": "image/png",
            }
            name = submit(client, {**body, "instances": [{**body["instances"][0], "image": image}]})
            app.run(op_id(name))
            path = tmp_path / f"{index}.mp4"
            path.write_bytes(client.get(sample_uris(operation(client, name))[0]).content)
            readings.append(detect_watermark(str(path)))
    assert all(reading.found for reading in readings), readings
    same, again, other = (reading.payload for reading in readings)
    assert same == again and other != same
    assert video_packets(tmp_path / "0.mp4") == video_packets(tmp_path / "1.mp4")


def test_the_payload_differs_per_sample_and_seed() -> None:
    request = {"prompt": "x"}
    payloads = {
        sample_payload(0xABCDEF, "veo", request, seed, index) for seed in (1, 2) for index in (0, 1)
    }
    assert len(payloads) == 4
    assert {p >> SAMPLE_BITS for p in payloads} == {0xABCDEF}


def test_watermark_false_leaves_the_pixels_unmarked(tmp_path: Path) -> None:
    with in_process(tmp_path / "data", workers=0, watermark=False) as app, app.client() as client:
        made = generated(app, client, tmp_path / "plain.mp4", seed=11)
        assert not (Path(app.settings.data_dir) / INSTALLATION_FILE).exists()
        reading = detect_watermark(str(tmp_path / "plain.mp4"))
        assert not reading.found and reading.payload is None, reading
        assert app.db.get_operation(made) is not None


def test_the_store_keeps_every_sample_of_a_payload_once(database_url: str) -> None:
    """SQLite and PostgreSQL: a full 64-bit payload round-trips; a retried job's second
    record is no error and no second row."""
    db = Database(database_url)
    try:
        db.migrate()
        store = WatermarkStore(db)
        payload = 0xFFFF_FFFF_FFFF_FFFE
        store.record(payload, "op-a", 0)
        store.record(payload, "op-a", 0)
        store.record(payload, "op-b", 1)
        rows = store.lookup(payload)
        assert sorted((r.operation_id, r.sample_index) for r in rows) == [("op-a", 0), ("op-b", 1)]
        times = [r.create_time for r in rows]
        assert times == sorted(times, reverse=True)  # newest first
        assert all(r.payload == payload for r in store.lookup(payload))
        assert store.lookup(payload - 1) == []
    finally:
        db.engine.dispose()


class FullSizeEngine:
    """Stands in for the diffusers engine: full-size frames (no `work_size`), a photo that
    drifts, 2 s; the worker must mark them as it marks the preview engine's."""

    name = "diffusers"

    def render(self, spec: RenderSpec, progress: Callable[[float], None]) -> Clip:
        photo = shapes_photo(spec.seed % 1000, spec.width + 48, spec.height)
        frames = (photo[:, step : step + spec.width].copy() for step in range(48))
        progress(1.0)
        return Clip(frames=frames, num_frames=48, width=spec.width, height=spec.height, fps=24)


def test_another_engine_s_full_size_frames_are_marked_too(tmp_path: Path) -> None:
    engines = {"preview": FullSizeEngine()}
    with (
        in_process(tmp_path / "data", workers=0, engines=engines) as app,
        app.client() as client,
    ):
        made = generated(app, client, tmp_path / "d.mp4", seed=21)
        reading = detect_watermark(str(tmp_path / "d.mp4"))
        assert reading.found and reading.payload is not None, reading
        assert app.db.get_operation(made).notes["engine"] == "diffusers"
        origin = watermark_origin(app.db, reading.payload)
        assert [(r.operation_id, r.sample_index) for r in origin] == [(made, 0)]
