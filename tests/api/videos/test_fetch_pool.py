"""Slow image servers must not hold the server (issue 31, item 6), in-process.

Image URLs are fetched on a small pool of their own (`CINEGEN_FETCH_WORKERS` running,
`CINEGEN_FETCH_QUEUE` waiting; past that a create is a 503 at once) and each fetch is bounded
by one deadline, header reads included. Before, a server drip-feeding its headers held each
fetch (and a thread of the server's general pool) until it stopped: 45 such creates took all
40 threads and an unrelated create waited until the image server gave up.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tests.support.app import in_process

from .support import ImageServer

FAST = "veo-3.1-fast-generate-preview"
STUCK = 45  # more than the 40 threads of the server's general pool
DEADLINE = 8.0  # the fetch deadline here: far above what an unrelated create takes


def test_stuck_fetches_leave_the_server_answering(tmp_path: Path) -> None:
    with (
        ImageServer() as images,
        in_process(
            tmp_path / "data",
            workers=0,
            fetch_allow_hosts="127.0.0.1",
            fetch_timeout_seconds=DEADLINE,
            fetch_workers=8,
            fetch_queue=8,
        ) as server,
    ):
        answers: list[tuple[float, int, dict[str, Any]]] = []
        lock = threading.Lock()
        body = {"model": FAST, "prompt": "slow image", "images": [images.url("/drip-headers")]}

        def create() -> None:
            with server.client() as client:
                response = client.post("/v1/videos", json=body)
            with lock:
                answers.append((time.monotonic(), response.status_code, response.json()))

        threads = [threading.Thread(target=create, daemon=True) for _ in range(STUCK)]
        for thread in threads:
            thread.start()
        until = time.monotonic() + 30
        while images.dripping < 8 and time.monotonic() < until:
            time.sleep(0.05)
        assert images.dripping >= 8, images.dripping  # the pool's workers are all stuck

        with server.client() as client:
            made = client.post("/v1/videos", json={"model": FAST, "prompt": "unrelated"})
            assert made.status_code == 200, made.text
            polled = client.get(f"/v1/videos/{made.json()['id']}")
            assert polled.status_code == 200, polled.text
        answered = time.monotonic()

        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a stuck create never answered"

    by_status: dict[int, list[tuple[float, dict[str, Any]]]] = {}
    for at, status, payload in answers:
        by_status.setdefault(status, []).append((at, payload))
    assert set(by_status) <= {400, 503}, {s: p[0][1] for s, p in by_status.items()}
    failed = by_status.get(400, [])
    busy = by_status.get(503, [])
    # at most workers + waiting places were admitted; the rest were refused at once
    assert 0 < len(failed) <= 16 and len(busy) >= STUCK - 16, (len(failed), len(busy))
    assert all("Too many image downloads" in p["error"]["message"] for _, p in busy)
    assert all(p["error"]["message"] == "failed to download image" for _, p in failed), failed[0]
    # the unrelated create and poll answered while the admitted fetches were still stuck
    assert all(answered < at for at, _ in failed)
