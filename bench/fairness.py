"""Fair scheduling between keys (issue 31 item 4): how long one key's single job waits behind
another key's long queue, against FIFO, in one run.

In this process (tests/support/app.py: the app behind an httpx client, no socket), one worker
thread and a scripted engine whose every job takes `--job-time` seconds. Key A submits
`--jobs` jobs, then one more job is submitted:

- fair: by key B. The worker takes B's job as soon as A's running job ends (owners take turns).
- FIFO reference: by key A, the same owner, whose jobs run oldest first: what every key's job
  met before this change (the probe measured 37 s behind 40 jobs).

Reported for that last job: its wait (create → claim, both as the database and the claim see
them) and wait / job time. The job time is the mean claim-to-claim interval of the run.

    python bench/fairness.py [--jobs 40] [--job-time 0.1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cinegen.store.db import utcnow  # noqa: E402
from tests.helpers import submit, text_request, wait_done  # noqa: E402
from tests.support.app import in_process, op_id  # noqa: E402
from tests.support.engines import ScriptedEngine  # noqa: E402

STEPS = 4  # progress reports per job; the job time is spread over them


def run(jobs: int, job_time: float, last_by_other_key: bool) -> tuple[float, float]:
    """(wait of the last job in seconds, mean seconds per job) for one scenario."""
    engine = ScriptedEngine(steps=STEPS, pause=job_time / STEPS)
    with (
        tempfile.TemporaryDirectory() as tmp,
        in_process(
            Path(tmp) / "data", workers=1, engines={"preview": engine}, max_queued_per_key=0
        ) as app,
    ):
        claimed: dict[str, datetime] = {}
        claim = app.db.claim_operation

        def recorded(op: str, owner: str, lease_seconds: float) -> Any:
            result = claim(op, owner, lease_seconds)
            if result is not None:
                claimed[op] = utcnow()
            return result

        app.db.claim_operation = recorded
        key_a, key_b = app.add_key("a"), app.add_key("b")
        with (
            app.client(headers={"x-goog-api-key": key_a}) as a,
            app.client(headers={"x-goog-api-key": key_b}) as b,
        ):
            names = [submit(a, text_request(f"a's job {i}")) for i in range(jobs)]
            other = b if last_by_other_key else a
            last = submit(other, text_request("the last job"))
            for name in names:
                wait_done(a, name, timeout=600)
            wait_done(other, last, timeout=600)
        created = app.db.get_operation(op_id(last)).create_time
        wait = (claimed[op_id(last)] - created).total_seconds()
        times = sorted(claimed.values())
        per_job = (times[-1] - times[0]).total_seconds() / (len(times) - 1)
        return wait, per_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--job-time", type=float, default=0.1)
    args = parser.parse_args()
    print(f"1 worker, key A submits {args.jobs} jobs of {args.job_time:g} s, then one more job")
    fair_wait, fair_job = run(args.jobs, args.job_time, last_by_other_key=True)
    fifo_wait, fifo_job = run(args.jobs, args.job_time, last_by_other_key=False)
    print(f"{'':26} {'wait s':>8} {'job s':>7} {'wait/job':>9}")
    for label, wait, job in (
        ("fair: by key B", fair_wait, fair_job),
        ("FIFO reference: by key A", fifo_wait, fifo_job),
    ):
        print(f"{label:26} {wait:8.2f} {job:7.3f} {wait / job:9.1f}")
    print(f"fair wait / FIFO wait: {fair_wait / fifo_wait:.3f}")


if __name__ == "__main__":
    main()
