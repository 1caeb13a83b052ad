"""bench/gpu.py stays runnable: a toy-size CPU run of both models, stock and cinegen paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.xdist_group("diffusers")


def test_toy_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = ["--toy", "--device", "cpu", "--frames", "17", "--height", "64", "--width", "64"]
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu.py"), *args, "--steps", "2", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    results = json.loads(out.read_text())
    runs = results  # one entry per model
    assert {r["model"] for r in runs} >= {"wan2.2-ti2v-5b", "ltx-video-2b"}
    for run in runs:
        fast = run["cinegen"]
        assert len(fast["step_s"]) == 2 and fast["mp4_bytes"] > 0
        assert run["stock"]["end_to_end_s"] > 0 and run["speedup_vs_stock"] > 0
        assert 0 < run["mfu"] < 1
    wan = next(r for r in runs if r["model"].startswith("wan"))
    assert "guidance pair batched in one forward" in wan["cinegen_settings"]
