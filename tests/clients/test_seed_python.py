"""Every Python sample of the seed's Veo page, run verbatim with google-genai against cinegen.

Each sample runs in its own subprocess (`GEMINI_API_KEY`, `GOOGLE_GEMINI_BASE_URL` only) from a
driver script: a preamble supplies what the seed leaves undefined (images another model made,
a `types` import, the `operation` of a previous generation), then the sample file's text is
compiled under its own path and executed as `__main__` (tracebacks point at the sample), then
a postamble may report what the sample left behind. All selected samples start together; the
tests then judge them one by one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients.seed_harness import (
    API_KEY,
    EXTENSION_FRAMES,
    FAKE_NANO_BANANA,
    FPS,
    IMAGES,
    IMPORT_TYPES,
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
    download,
    header_range,
    run_process,
    seed_lines,
    started_samples,
)

pytestmark = pytest.mark.xdist_group("seed_python")

# --- preamble pieces --------------------------------------------------------------------


def image_lines(*names: str) -> str:
    """Define each name as a `types.Image` of a PNG the harness wrote next to the driver."""
    lines = ["from google.genai import types as _seed_types\n"]
    for name in names:
        lines.append(
            f"{name} = _seed_types.Image(image_bytes=open({name + '.png'!r}, 'rb').read(), "
            "mime_type='image/png')\n"
        )
    return "".join(lines)


# The seed builds `sunglasses_reference` but lists `glasses_reference` (a typo in the seed).
GLASSES_REFERENCE = (
    "glasses_reference = types.VideoGenerationReferenceImage(\n"
    "    image=glasses_image, reference_type='asset')\n"
)

# The extension sample continues "a video from a previous generation": make one for real.
PRIOR_GENERATION = """\
import json as _seed_json
import time as _seed_time
from google import genai as _seed_genai
_seed_client = _seed_genai.Client()
operation = _seed_client.models.generate_videos(
    model="veo-3.1-generate-preview",
    prompt="Origami butterfly flaps its wings and flies out of the french doors into the garden.",
)
while not operation.done:
    _seed_time.sleep(0.5)
    operation = _seed_client.operations.get(operation)
assert operation.error is None, operation.error
print("SEED_RESULT " + _seed_json.dumps(
    {"prior": operation.name, "uri": operation.response.generated_videos[0].video.uri}))
"""

REPORT_OPERATION = """\
import json as _seed_json
print("SEED_RESULT " + _seed_json.dumps({
    "name": operation.name,
    "done": operation.done,
    "error": operation.error,
    "uri": (operation.response.generated_videos[0].video.uri
            if operation.response and operation.response.generated_videos else None),
}))
"""

REPORT_GENERATE_CONTENT = (
    'print("SEED_RESULT " + __import__("json").dumps({"generate_content": _seed_calls}))\n'
)


@dataclass(frozen=True)
class Sample:
    file: str
    output: str | None  # the MP4 the sample saves
    size: tuple[int, int]
    frames: int
    preamble: str = ""
    postamble: str = ""
    images: tuple[str, ...] = ()  # PNGs written next to the driver


EIGHT_S = 8 * FPS
SAMPLES_PY: dict[str, Sample] = {
    s.file.removesuffix(".py"): s
    for s in (
        Sample("py_01_text_to_video.py", "dialogue_example.mp4", SIZES["720p", "16:9"], EIGHT_S),
        Sample("py_02_aspect_ratio_9x16.py", "pizza_making.mp4", SIZES["720p", "9:16"], EIGHT_S),
        Sample(
            "py_03_resolution_4k.py",
            "4k_grand_canyon.mp4",
            SIZES["4k", "16:9"],
            EIGHT_S,
        ),
        Sample(
            "py_04_image_to_video.py",
            "veo3_with_image_input.mp4",
            SIZES["720p", "16:9"],
            EIGHT_S,
            preamble=FAKE_NANO_BANANA,
            postamble=REPORT_GENERATE_CONTENT,
            images=("nano_banana",),
        ),
        Sample(
            "py_05_reference_images.py",
            "veo3.1_with_reference_images.mp4",
            SIZES["720p", "16:9"],
            EIGHT_S,
            preamble=IMPORT_TYPES
            + image_lines("dress_image", "glasses_image", "woman_image")
            + GLASSES_REFERENCE,
            images=("dress_image", "glasses_image", "woman_image"),
        ),
        Sample(
            "py_06_first_last_frame.py",
            "veo3.1_with_interpolation.mp4",
            SIZES["720p", "16:9"],
            EIGHT_S,
            preamble=IMPORT_TYPES + image_lines("first_image", "last_image"),
            images=("first_image", "last_image"),
        ),
        Sample(
            "py_07_extension.py",
            "veo3.1_extension.mp4",
            SIZES["720p", "16:9"],
            EIGHT_S + EXTENSION_FRAMES,
            preamble=IMPORT_TYPES + PRIOR_GENERATION,
        ),
        Sample(
            "py_08_async_polling.py",
            None,
            SIZES["720p", "16:9"],
            EIGHT_S,
            postamble=REPORT_OPERATION,
        ),
        Sample(
            "py_09_negative_prompt.py", "parameters_example.mp4", SIZES["720p", "16:9"], EIGHT_S
        ),
    )
}

DRIVER = """\
# Driver for {file}: preamble, then the sample verbatim (compiled under its own path).
# --- preamble ---
{preamble}
# --- sample ---
with open({path!r}, encoding="utf-8") as _seed_f:
    _seed_code = compile(_seed_f.read(), {path!r}, "exec")
exec(_seed_code)
# --- postamble ---
{postamble}
"""


def write_driver(sample: Sample, cwd: Path) -> Path:
    for name in sample.images:
        (cwd / f"{name}.png").write_bytes(IMAGES[name].png)
    driver = cwd / "driver.py"
    driver.write_text(
        DRIVER.format(
            file=sample.file,
            preamble=sample.preamble,
            path=str(SAMPLES / sample.file),
            postamble=sample.postamble,
        )
    )
    return driver


@pytest.fixture(scope="module")
def runner(
    server, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SampleRunner]:
    env = client_env({"GEMINI_API_KEY": API_KEY, "GOOGLE_GEMINI_BASE_URL": server.url})

    def job(name: str, watch: ServerWatch) -> Run:
        sample = SAMPLES_PY[name]
        cwd = tmp_path_factory.mktemp(name)
        driver = write_driver(sample, cwd)
        run = Run(name, cwd, [sys.executable, "-u", str(driver)])
        return run_process(run, env, SAMPLE_HARD_TIMEOUT_S, watch=watch)

    yield from started_samples(server.url, request, job)


@pytest.mark.parametrize("name", list(SAMPLES_PY))
def test_python_sample(name: str, runner: SampleRunner, server, record_property) -> None:
    sample = SAMPLES_PY[name]
    run = runner.result(name)
    record_property("wall_s", round(run.wall_s, 1))
    print(f"{name}: {run.wall_s:.1f} s")

    def context() -> str:
        return describe(run, server.log())

    assert not run.timed_out and run.returncode == 0, f"sample failed\n{context()}"
    results = run.results()

    if sample.output is None:  # the polling sample saves nothing: its operation must be done
        assert results, f"the postamble printed no report\n{context()}"
        report = results[-1]
        assert report["done"] is True and report["error"] is None, f"{report}\n{context()}"
        assert report["uri"], f"done operation has no video uri: {report}\n{context()}"
        path = download(report["uri"], run.cwd / "async_example.mp4")
        check_mp4(path, size=sample.size, frames=sample.frames, context=context)
        return

    assert f"Generated video saved to {sample.output}" in run.stdout, context()
    info = check_mp4(
        run.cwd / sample.output, size=sample.size, frames=sample.frames, context=context
    )

    if name == "py_04_image_to_video":
        assert results and results[-1] == {"generate_content": ["gemini-2.5-flash-image"]}, (
            f"the sample did not go through the patched generate_content: {results}\n{context()}"
        )
        assert_looks_like(info.first_rgb, "nano_banana", "first frame", context)
    if name == "py_06_first_last_frame":
        assert_looks_like(info.first_rgb, "first_image", "first frame", context)
        assert_looks_like(info.last_rgb, "last_image", "last frame", context)
    if name == "py_07_extension":
        prior = results[0]
        assert prior.get("prior") and prior.get("uri"), f"{results}\n{context()}"
        source = check_mp4(
            download(prior["uri"], run.cwd / "prior.mp4"),
            size=sample.size,
            frames=EIGHT_S,
            context=context,
        )
        assert info.frames == source.frames + EXTENSION_FRAMES, context()


def test_samples_are_verbatim() -> None:
    """Each file, leading whitespace aside, is exactly the seed's lines named in its header."""
    lines = seed_lines()
    assert lines is not None, (
        "the seed document (tests/clients/seeds/) is the contract: it must be here"
    )
    for path in sorted(SAMPLES.glob("py_*.py")) + sorted(SAMPLES.glob("rest_*.sh")):
        first, last = header_range(path)
        body = path.read_text().split("\n")[1:]
        assert body[-1] == "", path.name
        expected = lines[first - 1 : last]
        kind = "Python" if path.suffix == ".py" else "REST"
        assert lines[first - 2] == kind, f"{path.name}: seed line {first - 1} is not {kind!r}"
        got = body[:-1]
        if kind == "Python":  # the seed lost the indentation; the file restores it
            compile(path.read_text(), str(path), "exec")
            got = [line.lstrip() for line in got]
            expected = [line.lstrip() for line in expected]
        assert got == expected, f"{path.name} differs from seed lines {first}-{last}"
    covered = {p.name for p in SAMPLES.glob("py_*.py")} | {p.name for p in SAMPLES.glob("*.sh")}
    assert len(covered) == 17, covered
    assert {s.file for s in SAMPLES_PY.values()} == {p.name for p in SAMPLES.glob("py_*.py")}
