"""`cinegen generate | operations | models` through the installed entry point, as a person
runs them: against a real server (`--server`) and in-process (no server), with the progress
output, the saved files and the exit codes checked."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cinegen.core import catalog, rules
from tests.helpers import decode_png, first_and_last_frames, png_bytes, psnr, video_facts
from tests.support.server import REPO, ServerProcess

CINEGEN = str(Path(sys.executable).parent / "cinegen")
OPERATION = re.compile(r"operation (models/\S+/operations/[0-9a-f]+)")


def cli(
    *args: str, cwd: Path, data_dir: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINEGEN_")}
    env["CINEGEN_DATA_DIR"] = str(data_dir or cwd / "data")
    return subprocess.run(
        [CINEGEN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def operation_of(run: subprocess.CompletedProcess[str]) -> str:
    match = OPERATION.search(run.stderr)
    assert match, run.stderr
    return match.group(1)


def percents(stderr: str) -> list[int]:
    return [int(p) for p in re.findall(r"^cinegen: \w+\s+(\d+)%$", stderr, re.M)]


def test_generate_against_a_server_saves_the_video_and_reports_progress(
    server: ServerProcess, tmp_path: Path
) -> None:
    run = cli(
        "generate",
        "a lighthouse at night, rain",
        "--resolution",  # 8 s at 1080p: seconds of work, so polls catch it running
        "1080p",
        "--duration",
        "8",
        "--server",
        server.url,
        "-o",
        "clips/light.mp4",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "clips/light.mp4"
    seen = percents(run.stderr)
    assert seen == sorted(seen) and seen[-1] == 100, run.stderr
    assert any(0 < p < 100 for p in seen), f"progress while running:\n{run.stderr}"
    assert run.stderr.rstrip().endswith("succeeded 100%")
    facts = video_facts(tmp_path / "clips/light.mp4")
    assert (facts.width, facts.height, facts.frames, facts.audio_rate) == (1920, 1080, 192, 48000)
    polled = httpx.get(f"{server.url}/v1beta/{operation_of(run)}").json()
    assert polled["done"] and polled["metadata"]["state"] == "SUCCEEDED"


def test_progress_bar_on_a_terminal_in_process(tmp_path: Path) -> None:
    """On a terminal the progress is rich's bar; here without --server, in this process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINEGEN_")}
    env.update(CINEGEN_DATA_DIR=str(tmp_path / "data"), COLUMNS="100", TERM="xterm-256color")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        # 8 s at 4k: seconds of work, so the bar surely redraws between 0 and 100 %
        [CINEGEN, "generate", "a sailboat at dawn", "--resolution", "4k", "--duration", "8"]
        + ["-o", "boat.mp4"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(30) == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert "━" in text, "rich draws its bar"
    assert "\x1b[" in text and "\r" in text, "redrawn in place with terminal escapes"
    assert "100%" in text and "succeeded" in text
    redraws = re.findall(r"(\d+)%", text)
    assert any(0 < int(p) < 100 for p in redraws), text
    assert proc.stdout.read().decode().strip() == "boat.mp4"
    assert video_facts(tmp_path / "boat.mp4").frames == 8 * 24


def test_in_process_samples_first_frame_and_local_operations(tmp_path: Path) -> None:
    frame = tmp_path / "first.png"
    frame.write_bytes(png_bytes(1280, 720, color=(180, 60, 20), square=(600, 300)))
    run = cli(
        "generate",
        "embers rising",
        "--image",
        "first.png",
        "--duration",
        "4",
        "--samples",
        "2",
        "--seed",
        "7",
        "-o",
        "embers.mp4",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "generating in this process" in run.stderr
    assert run.stdout.split() == ["embers-1.mp4", "embers-2.mp4"]
    for name in ("embers-1.mp4", "embers-2.mp4"):
        first, _ = first_and_last_frames(tmp_path / name)
        assert psnr(first, decode_png(frame.read_bytes())) >= 35, "frame 0 is the given image"
    name = operation_of(run)

    listed = cli("operations", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^{re.escape(name)}\s+succeeded\s+100%.*2 video\(s\)$", listed.stdout, re.M)
    got = cli("operations", "get", name.rsplit("/", 1)[-1], cwd=tmp_path)
    body = json.loads(got.stdout)
    assert body["done"] and body["metadata"]["seed"] == 7
    assert len(body["response"]["generateVideoResponse"]["generatedSamples"]) == 2
    assert cli("operations", "delete", name, cwd=tmp_path).returncode == 0
    gone = cli("operations", "get", name, cwd=tmp_path)
    assert gone.returncode == 1
    assert gone.stderr.strip() == f"cinegen: Operation {name.rsplit('/', 1)[-1]} not found."


def test_extend_an_operation_on_a_server_and_a_file_in_process(
    server: ServerProcess, tmp_path: Path
) -> None:
    base = cli(
        "generate", "a paper boat", "--duration", "4", "--server", server.url, "-o", "boat.mp4",
        cwd=tmp_path,
    )  # fmt: skip
    assert base.returncode == 0, base.stderr
    by_name = cli(
        "generate", "it drifts away", "--extend", operation_of(base), "--server", server.url,
        "-o", "longer.mp4", cwd=tmp_path,
    )  # fmt: skip
    assert by_name.returncode == 0, by_name.stderr
    assert video_facts(tmp_path / "longer.mp4").frames == (4 + 7) * 24

    by_file = cli(
        "generate", "it drifts away", "--extend", "boat.mp4", "--server", server.url,
        "-o", "sent.mp4", cwd=tmp_path,
    )  # fmt: skip
    assert by_file.returncode == 0, by_file.stderr
    assert video_facts(tmp_path / "sent.mp4").frames == (4 + 7) * 24

    # In this process, "made here" means made on the local data directory: the server's MP4
    # is refused as any MP4 the service did not store itself (provenance tags prove nothing).
    elsewhere = cli(
        "generate", "it drifts away", "--extend", "boat.mp4", "-o", "local.mp4", cwd=tmp_path
    )
    not_made_here = rules.extension_input_invalid(
        "only videos generated by this server can be extended"
    ).message
    assert elsewhere.returncode == 1
    assert elsewhere.stderr.strip().splitlines()[-1] == f"cinegen: {not_made_here}"
    made = cli("generate", "a paper boat", "--duration", "4", "-o", "here.mp4", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    local = cli(
        "generate", "it drifts away", "--extend", "here.mp4", "-o", "local.mp4", cwd=tmp_path
    )
    assert local.returncode == 0, local.stderr
    assert video_facts(tmp_path / "local.mp4").frames == (4 + 7) * 24
    start, _ = first_and_last_frames(tmp_path / "local.mp4")
    original, _ = first_and_last_frames(tmp_path / "here.mp4")
    assert psnr(start, original) >= 30, "an extension starts with the input video"


def test_refusals_print_the_exact_message_and_exit_non_zero(
    server: ServerProcess, tmp_path: Path
) -> None:
    hd_short = rules.resolution_duration_unsupported("1080p", 4).message
    for where in (("--server", server.url), ()):  # the server, then in-process: same words
        run = cli("generate", "x", "--resolution", "1080p", "--duration", "4", *where, cwd=tmp_path)
        assert run.returncode == 1
        assert run.stderr.strip().splitlines()[-1] == f"cinegen: {hd_short}"
        assert run.stdout == ""
    assert not list(tmp_path.glob("*.mp4"))

    unknown = cli("generate", "x", "--model", "veo-9", "--server", server.url, cwd=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == f"cinegen: {rules.model_not_found('veo-9', 'v1beta').message}"

    no_server = cli("generate", "x", "--server", "http://127.0.0.1:9", cwd=tmp_path)
    assert no_server.returncode == 3
    assert no_server.stderr.startswith("cinegen: cannot reach http://127.0.0.1:9")

    no_file = cli("generate", "x", "--image", "missing.png", "--server", server.url, cwd=tmp_path)
    assert no_file.returncode == 2
    assert no_file.stderr.strip() == (
        "cinegen: cannot read the image missing.png: No such file or directory"
    )

    usage = cli("generate", "x", "--aspect", "4:3", cwd=tmp_path)
    assert usage.returncode == 2 and "invalid choice: '4:3'" in usage.stderr


def test_operations_with_an_api_key(fresh_server: ServerProcess, tmp_path: Path) -> None:
    data = fresh_server.data_dir
    data.mkdir(parents=True)
    created = cli("keys", "create", cwd=REPO, data_dir=data)
    key = created.stdout.strip()
    fresh_server.env_extra["CINEGEN_WORKERS"] = "1"
    fresh_server.start()
    url = fresh_server.url

    missing = cli("operations", "list", "--server", url, cwd=tmp_path)
    assert missing.returncode == 1
    assert "Please use API Key" in missing.stderr
    wrong = cli("operations", "list", "--server", url, "--key", "cg-wrong", cwd=tmp_path)
    assert wrong.stderr.strip() == "cinegen: API key not valid. Please pass a valid API key."
    empty = cli("operations", "list", "--server", url, "--key", key, cwd=tmp_path)
    assert empty.returncode == 0 and empty.stdout == ""

    response = httpx.post(
        f"{url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
        headers={"x-goog-api-key": key},
        # 8 s at 4k, two samples: tens of seconds of work, so the cancel surely finds it running
        json={
            "instances": [{"prompt": "a long slow pan"}],
            "parameters": {"durationSeconds": 8, "resolution": "4k", "sampleCount": 2},
        },
    )
    name = response.json()["name"]
    listed = cli("operations", "list", "--server", url, "--key", key, cwd=tmp_path)
    assert listed.stdout.startswith(name)
    cancel = cli("operations", "cancel", name, "--server", url, "--key", key, cwd=tmp_path)
    assert cancel.returncode == 0 and cancel.stdout.strip() == f"cancelled {name}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # a running job stops at its next progress step
        got = cli("operations", "get", name, "--server", url, "--key", key, cwd=tmp_path)
        if json.loads(got.stdout).get("done"):
            break
        time.sleep(0.3)
    assert json.loads(got.stdout)["metadata"]["state"] == "CANCELLED"
    delete = cli("operations", "delete", name, "--server", url, "--key", key, cwd=tmp_path)
    assert delete.returncode == 0
    gone = cli("operations", "get", name, "--server", url, "--key", key, cwd=tmp_path)
    assert gone.returncode == 1 and "not found" in gone.stderr


def test_ctrl_c_cancels_the_operation(server: ServerProcess, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINEGEN_")}
    proc = subprocess.Popen(
        # 4k, two samples: tens of seconds of work, so Ctrl-C surely lands while it runs
        [CINEGEN, "generate", "a slow sunrise", "--resolution", "4k", "--samples", "2"]
        + ["--server", server.url],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal: a shell's background job (a CI run started with `&`) ignores
        # SIGINT, and the CLI would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in proc.stderr:  # wait until it is polling
        lines.append(line)
        if line.startswith("cinegen: operation "):
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, "".join(lines) + rest
    name = OPERATION.search("".join(lines)).group(1)
    assert f"interrupted: cancelled {name}" in rest
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        op = httpx.get(f"{server.url}/v1beta/{name}").json()
        if op["done"]:
            break
        time.sleep(0.2)
    assert op["metadata"]["state"] == "CANCELLED"
    assert not list(tmp_path.glob("*.mp4"))


def test_models_is_unchanged(tmp_path: Path) -> None:
    run = cli("models", cwd=tmp_path)
    assert run.returncode == 0
    expected = [f"{m.id:34} {m.engine:8} {m.description}" for m in catalog.MODELS.values()]
    assert run.stdout.splitlines() == expected
