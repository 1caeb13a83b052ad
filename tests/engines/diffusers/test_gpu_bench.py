"""bench/gpu.py stays runnable: toy-size CPU runs of the stage breakdown and of every engine
profile (issue 29's table), so the GPU command works the moment a GPU is there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BENCH = REPO / "bench" / "gpu.py"
PROFILES = (
    "wan-5b-stock",
    "wan-5b-4step",
    "wan-5b-4step-fp8",
    "wan-5b-4step-cache",
    "ltx-distilled",
    "ltx2-audio",
)
pytestmark = pytest.mark.xdist_group("diffusers")


def test_toy_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = ["--model", "components", "--toy", "--device", "cpu", "--steps", "2"]
    subprocess.run(
        [sys.executable, str(BENCH), *args, "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    runs = json.loads(out.read_text())  # one entry per model
    assert {r["model"] for r in runs} >= {"wan2.2-ti2v-5b", "ltx-video-2b"}
    for run in runs:
        fast = run["cinegen"]
        assert len(fast["step_s"]) == 2 and fast["mp4_bytes"] > 0
        assert run["stock"]["end_to_end_s"] > 0 and run["speedup_vs_stock"] > 0
        assert 0 < run["mfu"] < 1
    wan = next(r for r in runs if r["model"].startswith("wan"))
    assert "guidance pair batched in one forward" in wan["cinegen_settings"]


def test_every_profile_runs_through_the_engine_or_says_why_not(tmp_path: Path) -> None:
    out = tmp_path / "tmp.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--model", "all", "--tiny", "--device", "cpu"]
        + ["--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "random weights" in done.stdout and "same as with real weights" in done.stdout
    report = json.loads(out.read_text())
    assert "noise" in report["note"]
    assert set(report["profiles"]) == set(PROFILES)
    for name, result in report["profiles"].items():
        if "skipped" in result:
            assert name == "wan-5b-4step-fp8"  # no CUDA here: FP8 cannot run
            assert "CUDA" in result["skipped"] or "torchao" in result["skipped"]
            continue
        assert result["seconds"] > 0 and result["cinegen"]["mp4_bytes"] > 0
        assert result["stock"]["end_to_end_s"] > 0 and result["ratio_to_stock"] > 0
        assert 0 < result["mfu"] < 1 and result["transformer_tflop"] > 0
        assert f"{name:20s}" in done.stdout
    assert report["profiles"]["ltx2-audio"]["cinegen"]["audio"] is True
    assert report["profiles"]["wan-5b-4step-cache"]["cache"]["kind"] == "first_block"
    # the recipe's own steps, capped at 2 by --tiny
    assert {r["steps"] for r in report["profiles"].values() if "seconds" in r} == {2}
