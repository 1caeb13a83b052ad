"""SIGKILL mid-generation loses nothing; videos expire after the retention period."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.helpers import create, sample_uris, video_facts, wait_done
from tests.support.server import ServerProcess


def test_sigkill_mid_generation_loses_no_operation(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    fresh_server.env_extra["CINEGEN_WORKERS"] = "1"
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        done_name = create(
            client,
            {
                "instances": [{"prompt": "finished before the crash"}],
                "parameters": {"durationSeconds": 4},
            },
        ).json()["name"]
        finished = wait_done(client, done_name)
        running = create(
            client,
            {"instances": [{"prompt": "interrupted 1080p"}], "parameters": {"resolution": "1080p"}},
        ).json()["name"]
        queued = create(
            client,
            {"instances": [{"prompt": "still queued"}], "parameters": {"durationSeconds": 4}},
        ).json()["name"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1beta/{running}").json()["metadata"]["state"] != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    fresh_server.kill()

    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        for name in (running, queued):
            op = wait_done(client, name)
            assert "response" in op, op
            out = tmp_path / f"{name.rsplit('/', 1)[-1]}.mp4"
            out.write_bytes(client.get(sample_uris(op)[0]).content)
            assert video_facts(out).frames > 0
        again = client.get(sample_uris(finished)[0])
        assert again.status_code == 200 and again.content[4:8] == b"ftyp"


def test_expired_videos_answer_404_and_leave_the_disk(fresh_server: ServerProcess) -> None:
    fresh_server.env_extra.update(
        {
            "CINEGEN_RETENTION_HOURS": str(3 / 3600),  # three seconds
            "CINEGEN_SWEEP_INTERVAL_SECONDS": "0.5",
        }
    )
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        op = wait_done(
            client,
            create(
                client,
                {"instances": [{"prompt": "ephemeral"}], "parameters": {"durationSeconds": 4}},
            ).json()["name"],
        )
        uri = sample_uris(op)[0]
        file_id = uri.split("files/")[1].split(":")[0]
        stored = fresh_server.data_dir / "files" / "videos" / f"{file_id}.mp4"
        assert stored.is_file()
        time.sleep(4.5)
        response = client.get(uri)
        assert response.status_code == 404
        assert "expired" in response.json()["error"]["message"]
        assert not stored.exists()


def test_extension_input_restarts_its_retention_clock(fresh_server: ServerProcess) -> None:
    retention = 8.0
    fresh_server.env_extra.update(
        {
            "CINEGEN_RETENTION_HOURS": str(retention / 3600),
            "CINEGEN_SWEEP_INTERVAL_SECONDS": "0.5",
        }
    )
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        body = {"instances": [{"prompt": "kept alive"}], "parameters": {"durationSeconds": 4}}
        op = wait_done(client, create(client, body).json()["name"])
        created = time.monotonic()
        uri = sample_uris(op)[0]
        time.sleep(retention / 2)
        extend = create(client, {"instances": [{"prompt": "more", "video": {"uri": uri}}]})
        assert extend.status_code == 200, extend.text
        touched = time.monotonic()
        time.sleep(max(0.0, created + retention + 1.5 - time.monotonic()))
        assert time.monotonic() < touched + retention - 0.5  # still inside the renewed period
        assert client.get(uri).status_code == 200  # would have expired without the reset
