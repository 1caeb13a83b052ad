"""Every REST (curl + jq) sample of the seed's Veo page, run verbatim with bash against cinegen.

The one change made at run time is the `BASE_URL=` line, pointed at the test server. The
variables the seed says a sample "assumes" (`first_image_base64`, `butterfly_video_base64`, …)
are exported in the environment; the butterfly video is one this server generated first (too
big to export: see LONG_ARGS_PRELUDE). bash runs with `-x`, so the trace (the operation name,
every status response) lands in the failure message, and a sample whose create call got no
operation name is stopped at once instead of polling `.../null` until its timeout.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients.seed_harness import (
    API_KEY,
    EXTENSION_FRAMES,
    FPS,
    IMAGES,
    SAMPLE_HARD_TIMEOUT_S,
    SAMPLES,
    SIZES,
    Run,
    SampleRunner,
    ServerWatch,
    assert_looks_like,
    check_mp4,
    client_env,
    describe,
    generate_via_rest,
    probe,
    run_process,
    started_samples,
)

pytestmark = pytest.mark.xdist_group("seed_rest")

SEED_BASE_URL = 'BASE_URL="https://generativelanguage.googleapis.com/v1beta"'
# Linux refuses any single argv or environment string of 128 KiB or more (MAX_ARG_STRLEN).
# The extension sample puts the whole base64 video in one `curl -d '…'` argument, and every
# video a Veo model makes (cinegen's preview engine: 0.4-1.4 MB for 8 s of 720p; the AAC
# track alone is ~64 KB for 4 s) is bigger than that, so as written it cannot run on Linux.
# For such a variable the harness (1) sets it inside the shell from a file instead of
# exporting it, and (2) prepends a `curl` shell function that hands an oversized `-d`
# argument to the real curl as `--data-binary @file`: the same request bytes, no exec limit.
# The sample's text itself stays verbatim; the test reports when this prelude was used.
MAX_ARG_BYTES = 128 * 1024
BIG_VALUE = 64 * 1024
LONG_ARGS_PRELUDE = """\
# --- cinegen test harness prelude (not part of the seed sample) ---
curl() {
  local -
  set +x  # the arguments are traced by the caller already
  local args=() prev="" a n=0
  for a in "$@"; do
    if [ "$prev" = "-d" ] && [ "${#a}" -gt BIG_VALUE ]; then
      n=$((n + 1))
      printf '%s' "$a" > "curl_data_$n.txt"
      unset 'args[${#args[@]}-1]'
      args+=(--data-binary "@curl_data_$n.txt")
    else
      args+=("$a")
    fi
    prev=$a
  done
  command curl "${args[@]}"
}
""".replace("BIG_VALUE", str(BIG_VALUE))

EIGHT_S = 8 * FPS


@dataclass(frozen=True)
class Sample:
    file: str
    output: str | None  # the MP4 the sample downloads
    size: tuple[int, int]
    frames: int
    env: tuple[str, ...] = ()  # `<name>_base64` variables it assumes


SAMPLES_REST: dict[str, Sample] = {
    s.file.removesuffix(".sh"): s
    for s in (
        Sample("rest_01_text_to_video.sh", "dialogue_example.mp4", SIZES["720p", "16:9"], EIGHT_S),
        Sample("rest_02_aspect_ratio_9x16.sh", "pizza_making.mp4", SIZES["720p", "9:16"], EIGHT_S),
        Sample(
            "rest_03_resolution_4k.sh",
            "4k_grand_canyon.mp4",
            SIZES["4k", "16:9"],
            EIGHT_S,
        ),
        Sample(
            "rest_04_reference_images.sh",
            "veo3.1_with_reference_images.mp4",
            SIZES["720p", "16:9"],
            EIGHT_S,
            env=("dress_image", "glasses_image", "woman_image"),
        ),
        Sample(
            "rest_05_first_last_frame.sh",
            "veo3.1_with_interpolation.mp4",
            SIZES["720p", "16:9"],
            EIGHT_S,
            env=("first_image", "last_image"),
        ),
        Sample(
            "rest_06_extension.sh",
            "veo3.1_extension.mp4",
            SIZES["720p", "16:9"],
            EIGHT_S + EXTENSION_FRAMES,
            env=("butterfly_video",),
        ),
        Sample("rest_07_async_polling.sh", None, SIZES["720p", "16:9"], EIGHT_S),
        Sample(
            "rest_08_negative_prompt.sh", "parameters_example.mp4", SIZES["720p", "16:9"], EIGHT_S
        ),
    )
}


def script_for(sample: Sample, base_url: str) -> str:
    text = (SAMPLES / sample.file).read_text()
    assert text.count(SEED_BASE_URL + "\n") == 1, f"{sample.file}: no single BASE_URL line"
    return text.replace(SEED_BASE_URL + "\n", f'BASE_URL="{base_url}/v1beta"\n')


def no_operation(line: str) -> str | None:
    """A `bash -x` trace line showing that predictLongRunning gave no operation name."""
    if re.fullmatch(r"\++ operation_name=(null)?", line.strip()):
        return f"predictLongRunning returned no operation name ({line.strip()!r})"
    return None


def make_butterfly(server_url: str, cwd: Path) -> tuple[Path, int]:
    """The 'video from a previous generation' the extension sample assumes: made here."""
    _, mp4 = generate_via_rest(
        server_url,
        "veo-3.1-generate-preview",
        {
            "instances": [
                {
                    "prompt": "Origami butterfly flaps its wings and flies out of the "
                    "french doors into the garden."
                }
            ]
        },
    )
    path = cwd / "butterfly_video.mp4"
    path.write_bytes(mp4)
    return path, probe(path).frames


@pytest.fixture(scope="module")
def runner(
    server, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SampleRunner]:
    def job(name: str, watch: ServerWatch) -> Run:
        sample = SAMPLES_REST[name]
        cwd = tmp_path_factory.mktemp(name)
        env = {"GEMINI_API_KEY": API_KEY}
        run = Run(name, cwd, ["bash", "-x", "script.sh"])
        for var in sample.env:
            if var == "butterfly_video":
                path, frames = make_butterfly(server.url, cwd)
                run.extra["butterfly_frames"] = frames
                env[f"{var}_base64"] = base64.b64encode(path.read_bytes()).decode()
            else:
                env[f"{var}_base64"] = IMAGES[var].b64
        prelude = ""
        for var, value in list(env.items()):
            if len(value) > BIG_VALUE:  # cannot be exported, nor passed to curl as it is
                (cwd / f"{var}.txt").write_text(value)
                prelude += f"{var}=$(cat {var}.txt)\n"
                del env[var]
                run.extra["prelude"] = f"{var} is {len(value)} chars (limit {MAX_ARG_BYTES})"
        if prelude:
            prelude = LONG_ARGS_PRELUDE + prelude + "# --- the seed sample, verbatim ---\n"
        (cwd / "script.sh").write_text(prelude + script_for(sample, server.url))
        return run_process(
            run, client_env(env), SAMPLE_HARD_TIMEOUT_S, abort=no_operation, watch=watch
        )

    yield from started_samples(server.url, request, job)


@pytest.mark.parametrize("name", list(SAMPLES_REST))
def test_rest_sample(name: str, runner: SampleRunner, server, record_property) -> None:
    sample = SAMPLES_REST[name]
    run = runner.result(name)
    record_property("wall_s", round(run.wall_s, 1))
    if "prelude" in run.extra:
        record_property("long_args_prelude", run.extra["prelude"])
    print(f"{name}: {run.wall_s:.1f} s {run.extra.get('prelude', '')}")

    def context() -> str:
        return describe(run, server.log())

    assert not run.timed_out and run.returncode == 0 and not run.note, f"sample failed\n{context()}"
    if sample.output is None:
        assert "Video generation complete." in run.stdout, context()
        return
    assert f"Downloading video from: {server.url}/" in run.stdout, context()
    info = check_mp4(
        run.cwd / sample.output, size=sample.size, frames=sample.frames, context=context
    )
    if name == "rest_06_extension":
        assert info.frames == run.extra["butterfly_frames"] + EXTENSION_FRAMES, context()
    if name == "rest_05_first_last_frame":
        assert_looks_like(info.first_rgb, "first_image", "first frame", context)
        assert_looks_like(info.last_rgb, "last_image", "last frame", context)
