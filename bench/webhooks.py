"""Webhook delivery latency: from "operation done" to the receiver's 200, on loopback.

The app runs in this process (tests/support/app.py) with a scripted engine that renders two
flat frames at once, two worker threads, and one static webhook of the anonymous owner
pointing at a threaded HTTP receiver on 127.0.0.1 (allowed by `CINEGEN_FETCH_ALLOW_HOSTS`,
as a trusted deployment would list it). N operations are submitted; for each delivery the
latency is the receiver's arrival time (after it verified nothing: it answers 200 at once)
minus the operation's finish time as the database recorded it (the usage row written in the
finishing transaction, the same one that writes the outbox row).

Reference, in the same run: the same load with the sender's wake-up unplugged, so it finds
rows only by polling the database every `webhook_poll_seconds` (1 s), as it does for rows
another process queued. The ratio shows what the in-process wake-up buys.

    python bench/webhooks.py [--operations 200] [--reference 50]

Target (issue 26): p99 < 1 s with the wake-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cinegen.service.webhooks import WebhookFields, WebhookService  # noqa: E402
from tests.helpers import text_request  # noqa: E402
from tests.support.app import in_process, op_id  # noqa: E402
from tests.support.engines import ScriptedEngine  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(count: int, wake: bool) -> list[float]:
    """Latencies (s) of `count` deliveries, done → receiver's 200."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        Receiver() as receiver,
        in_process(
            Path(tmp) / "data",
            workers=2,
            engines={"preview": ScriptedEngine(steps=1)},
            fetch_allow_hosts="127.0.0.1",
            max_queued_per_key=0,
            log_access=False,
            log_level="WARNING",
        ) as app,
        app.client() as client,
    ):
        if not wake:  # the loop keeps its own Event; enqueues now set another one
            app.db.finish_events.wake = threading.Event()
        WebhookService(app.db, app.settings).create(
            None, WebhookFields(uri=receiver.url(), subscribed_events=["video.generated"])
        )
        names = []
        for i in range(count):
            response = client.post(
                "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                json=text_request(f"bench {i}", resolution="720p"),
            )
            response.raise_for_status()
            names.append(response.json()["name"])
        deliveries = receiver.wait_for(count, timeout=60 + count)
        latencies = []
        for delivery in deliveries:
            name = json.loads(delivery.body)["data"]["id"]
            usage = app.db.usage_of(op_id(name))
            latencies.append(delivery.arrived - usage["finish_time"].timestamp())
        return latencies


def describe(label: str, values: list[float]) -> str:
    return (
        f"{label:32} n={len(values):4}  p50 {statistics.median(values) * 1000:7.1f} ms  "
        f"p99 {percentile(values, 99) * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--reference", type=int, default=50, help="operations, polling only")
    args = parser.parse_args()
    woken = run(args.operations, wake=True)
    polled = run(args.reference, wake=False)
    print(describe("in-process wake-up", woken))
    print(describe("reference: DB polling only (1 s)", polled))
    p50, p99 = statistics.median(woken), percentile(woken, 99)
    print(
        f"ratio wake/poll: p50 {p50 / statistics.median(polled):.3f}  "
        f"p99 {p99 / percentile(polled, 99):.3f}"
    )
    print(f"target p99 < 1 s: {'met' if p99 < 1.0 else 'MISSED'} ({p99 * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
