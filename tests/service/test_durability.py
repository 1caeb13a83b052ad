"""SIGKILL mid-generation loses nothing (a real server process, killed for real)."""

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
