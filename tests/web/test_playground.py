"""The playground page in Debian's Chromium: every mode a person uses, end to end.

Each test drives the page as a person would (clicks, uploads, keyboard), lets the real server
generate, and checks what the page shows against what the API itself answers.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from playwright.sync_api import Page

from cinegen.core import rules
from tests.helpers import decode_png, first_and_last_frames, png_bytes, psnr, video_facts
from tests.support.web import Studio, new_context, open_studio, save_screenshot

pytestmark = pytest.mark.xdist_group("web")

GENERATION_MS = 180_000


# ---------------------------------------------------------------------------------- helpers


def choose(page: Page, group: str, value: str) -> None:
    """Click a segmented option by its label, as a person does (`durationSeconds`, `4`)."""
    page.click(f"label[for='{group}-{value}']")


def option_state(page: Page, group: str, value: str) -> dict:
    return page.eval_on_selector(
        f"#{group}-{value}", "e => ({disabled: e.disabled, checked: e.checked})"
    )


def reasons(page: Page, list_id: str) -> list[str]:
    return page.eval_on_selector_all(f"#{list_id} li", "els => els.map(e => e.textContent)")


def generate_and_watch(page: Page) -> list[int]:
    """Press Generate; return every progress value the bar showed until the result came."""
    page.click("#generate")
    page.wait_for_selector("#stage-progress:not([hidden])")
    seen: list[int] = []
    deadline = time.monotonic() + GENERATION_MS / 1000
    while time.monotonic() < deadline:
        now = page.evaluate(
            "() => ({value: Number(document.querySelector('#progress-bar')"
            ".getAttribute('aria-valuenow')), done: !document.querySelector('#stage-results')"
            ".hidden, failed: !document.querySelector('#stage-error').hidden})"
        )
        if not seen or seen[-1] != now["value"]:
            seen.append(now["value"])
        if now["failed"]:
            raise AssertionError(page.text_content("#stage-error"))
        if now["done"]:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no result after {GENERATION_MS} ms; progress seen {seen}")


def result_sources(page: Page) -> list[str]:
    page.wait_for_selector("#stage-results:not([hidden]) video")
    return page.eval_on_selector_all("#stage-results video", "els => els.map(e => e.src)")


def fetch(studio: Studio, url: str, path: Path) -> Path:
    response = studio.api.get(url)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def assert_plays(page: Page, selector: str) -> dict:
    """The element really plays: currentTime advances, and video and audio get decoded."""
    page.wait_for_function(
        "s => document.querySelector(s).readyState >= 2", arg=selector, timeout=15_000
    )
    page.click(selector)  # a click on a <video controls> toggles playback in Chromium
    page.wait_for_function(
        "s => { const v = document.querySelector(s); return !v.paused && v.currentTime > 0.3; }",
        arg=selector,
        timeout=15_000,
    )
    first = page.eval_on_selector(selector, "v => v.currentTime")
    time.sleep(0.6)
    facts = page.eval_on_selector(
        selector,
        "v => ({t: v.currentTime, paused: v.paused, width: v.videoWidth, height: v.videoHeight,"
        " audio: v.webkitAudioDecodedByteCount, video: v.webkitVideoDecodedByteCount,"
        " duration: v.duration, error: v.error && v.error.message})",
    )
    assert facts["error"] is None
    assert facts["t"] > first, facts
    assert facts["video"] > 0, facts
    return facts


def card(page: Page, prompt: str) -> str:
    """The selector of the history card showing `prompt`."""
    found = page.locator("#history-list .card").filter(
        has=page.locator(".card-prompt", has_text=prompt)
    )
    found.first.wait_for()
    return f"#history-list .card[data-name='{found.first.get_attribute('data-name')}']"


# ------------------------------------------------------------------------------------ tests


def test_rules_are_visible_before_submitting(page: Page, studio: Studio) -> None:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    open_studio(page, studio)

    # Nothing typed: Generate says why, and pressing it sends nothing.
    assert "needs a prompt" in page.text_content("#generate-reason")
    assert page.get_attribute("#generate", "aria-disabled") == "true"
    page.click("#generate", force=True)  # still focusable and clickable: it explains, sends nothing
    page.wait_for_selector("#toast:not([hidden])")
    assert posts == []

    page.select_option("#model", "veo-3.1-fast-generate-preview")
    assert page.is_disabled("#file-ref0")
    assert "Veo 3.1 Fast takes no reference images" in reasons(page, "inputs-hint")

    page.select_option("#model", "veo-3.1-generate-preview")
    choose(page, "durationSeconds", "4")
    choose(page, "resolution", "1080p")
    assert option_state(page, "durationSeconds", "8") == {"disabled": False, "checked": True}
    assert option_state(page, "durationSeconds", "4")["disabled"]
    assert "1080p needs 8 s" in reasons(page, "duration-reasons")

    page.select_option("#model", "veo-2.0-generate-001")
    assert option_state(page, "resolution", "1080p")["disabled"]
    assert option_state(page, "resolution", "720p")["checked"]
    assert "Veo 2 makes 720p only" in reasons(page, "resolution-reasons")
    assert option_state(page, "durationSeconds", "4")["disabled"]
    assert "Veo 2 makes 5, 6, 7 or 8 s videos" in reasons(page, "duration-reasons")
    assert "silent" in page.text_content("#model-caps")
    page.fill("#prompt", "a lighthouse in a storm")
    assert page.text_content("#generate-reason") == ""
    save_screenshot(page, "rules-veo2")
    assert posts == []


def test_text_to_video_progress_samples_and_playback(
    page: Page, studio: Studio, tmp_path: Path
) -> None:
    open_studio(page, studio)
    page.fill("#prompt", "a red fox running through fresh snow at sunset")
    choose(page, "durationSeconds", "4")
    choose(page, "sampleCount", "2")
    progress = generate_and_watch(page)
    # A live bar: it moved through values strictly between 0 and 100 while the job ran.
    assert any(0 < p < 100 for p in progress), progress
    assert progress == sorted(progress)

    sources = result_sources(page)
    assert len(sources) == 2
    boxes = [page.locator("#stage-results video").nth(i).bounding_box() for i in range(2)]
    assert (
        abs(boxes[0]["y"] - boxes[1]["y"]) < 2
        and boxes[1]["x"] > boxes[0]["x"] + boxes[0]["width"] - 1
    ), "the two samples are side by side"

    facts = assert_plays(page, "#stage-results figure:nth-child(1) video")
    assert (facts["width"], facts["height"]) == (1280, 720)
    assert facts["audio"] > 0, "the soundtrack is decoded while playing"
    save_screenshot(page, "text-to-video-playing")

    with page.expect_download() as info:
        page.click("#stage-results figure:nth-child(2) a[download]")
    saved = tmp_path / "download.mp4"
    info.value.save_as(saved)
    api_copy = fetch(studio, sources[1], tmp_path / "api.mp4")
    assert saved.read_bytes() == api_copy.read_bytes()
    got = video_facts(saved)
    assert (got.width, got.height, got.frames, got.audio_rate) == (1280, 720, 96, 48000)

    # The key's usage today, as GET /v1beta/cinegen/usage sums it (these 2 videos included).
    total = studio.api.get("/v1beta/cinegen/usage").json()["total"]
    assert total["samples"] >= 2
    page.click("#history-refresh")
    expected = (
        f"Today: {total['samples']} videos, {total['seconds']:.1f} s made, "
        f"${total['veoPriceUsd']:.2f} on Veo"
    )
    page.wait_for_function(
        "t => document.querySelector('#usage-today').textContent === t", arg=expected
    )


def test_image_to_video_with_an_upload(page: Page, studio: Studio, tmp_path: Path) -> None:
    first = tmp_path / "harbour.png"
    first.write_bytes(png_bytes(1280, 720, color=(30, 90, 160), square=(500, 300)))
    open_studio(page, studio)
    page.set_input_files("#file-image", str(first))
    page.wait_for_selector(".slot[data-slot='image'].filled")
    assert page.text_content("#mode-badge") == "Image to video"
    assert page.get_attribute(".slot[data-slot='image'] img", "alt").endswith("harbour.png")
    assert not page.is_disabled("#file-lastFrame"), "a last frame can follow a first frame"
    assert page.is_disabled("#file-ref0")
    assert "Reference images can't be combined with a first frame" in reasons(page, "inputs-hint")

    page.fill("#prompt", "boats bobbing in the harbour")
    choose(page, "durationSeconds", "4")
    generate_and_watch(page)
    [source] = result_sources(page)
    video = fetch(studio, source, tmp_path / "out.mp4")
    got_first, _ = first_and_last_frames(video)
    assert psnr(got_first, decode_png(first.read_bytes())) >= 35, "frame 0 is the upload"
    assert_plays(page, "#stage-results video")
    save_screenshot(page, "image-to-video")


def drop_file(page: Page, selector: str, name: str, data: bytes, mime: str) -> None:
    """A file dropped on `selector` as a drag from the desktop does (a real `drop` event)."""
    transfer = page.evaluate_handle(
        """([name, b64, mime]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], name, { type: mime }));
          return dt;
        }""",
        [name, base64.b64encode(data).decode(), mime],
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_an_image_dropped_on_a_slot_fills_it_unless_the_slot_is_off(
    page: Page, studio: Studio
) -> None:
    open_studio(page, studio)
    image = png_bytes(640, 360, color=(30, 90, 160))
    drop_file(page, ".slot[data-slot='image'] .drop", "dropped.png", image, "image/png")
    page.wait_for_selector(".slot[data-slot='image'].filled")
    assert page.get_attribute(".slot[data-slot='image'] img", "alt").endswith("dropped.png")
    assert page.is_disabled("#file-ref0")  # no reference images beside a first frame
    drop_file(page, ".slot[data-slot='ref0'] .drop", "ref.png", image, "image/png")
    page.wait_for_timeout(300)  # a FileReader would have filled it by now
    assert page.locator(".slot[data-slot='ref0'].filled").count() == 0


def test_extend_from_history(page: Page, studio: Studio, tmp_path: Path) -> None:
    open_studio(page, studio)
    page.fill("#prompt", "a paper boat on a pond")
    choose(page, "durationSeconds", "4")
    generate_and_watch(page)
    [source] = result_sources(page)

    boat = card(page, "a paper boat on a pond")
    page.click(f"{boat} [data-action='extend']")
    assert page.is_visible("#extend-chip")
    assert "a paper boat on a pond" in page.text_content("#extend-label")
    assert page.text_content("#mode-badge") == "Extension"
    # The rules of an extension, visible before submitting.
    assert option_state(page, "durationSeconds", "8") == {"disabled": False, "checked": True}
    assert option_state(page, "durationSeconds", "4")["disabled"]
    assert option_state(page, "resolution", "1080p")["disabled"]
    assert "An extension is made at 720p" in reasons(page, "resolution-reasons")
    assert page.is_disabled("#file-image")
    save_screenshot(page, "extend-ready")

    page.fill("#prompt", "the boat drifts under a bridge")
    generate_and_watch(page)
    [extended] = result_sources(page)
    assert extended != source
    facts = video_facts(fetch(studio, extended, tmp_path / "extended.mp4"))
    assert facts.frames == (4 + 7) * 24, "the input's 4 s plus the 7 s an extension adds"
    original = frames(fetch(studio, source, tmp_path / "source.mp4"))
    assert psnr(frames(tmp_path / "extended.mp4")[0], original[0]) >= 30, "it starts as the input"
    played = assert_plays(page, "#stage-results video")
    assert played["duration"] == pytest.approx(11, abs=0.1)
    save_screenshot(page, "extend-done")


def test_refused_combination_shows_the_exact_message(page: Page, studio: Studio) -> None:
    """Veo 3 makes 1080p in 16:9 only. The capability row does not say so (it lists the
    resolutions, not the pairs), so the page lets it through and the server refuses."""
    before = len(studio.api.get("/v1beta/operations").json().get("operations", []))
    open_studio(page, studio)
    page.select_option("#model", "veo-3.0-fast-generate-001")
    page.fill("#prompt", "a skyscraper at dawn")
    choose(page, "aspectRatio", "916")
    choose(page, "resolution", "1080p")
    page.click("#generate")
    page.wait_for_selector("#stage-error:not([hidden])")

    direct = studio.api.post(
        "/v1beta/models/veo-3.0-fast-generate-001:predictLongRunning",
        json={
            "instances": [{"prompt": "a skyscraper at dawn"}],
            "parameters": {"aspectRatio": "9:16", "resolution": "1080p", "durationSeconds": 8},
        },
    )
    assert direct.status_code == 400
    message = direct.json()["error"]["message"]
    assert message == rules.resolution_aspect_unsupported("1080p", "9:16").message
    assert page.text_content("#error-message") == message
    assert page.text_content("#error-status") == "400 INVALID_ARGUMENT"
    after = len(studio.api.get("/v1beta/operations").json().get("operations", []))
    assert after == before, "a refused request leaves no operation"

    # A refusal the rules in the page do not foresee at all: a prompt over the token limit.
    page.select_option("#model", "veo-3.1-generate-preview")
    page.fill("#prompt", "word " * 1100)
    page.click("#generate")
    page.wait_for_function(
        "() => document.querySelector('#error-message').textContent.includes('1100 tokens')"
    )
    assert page.text_content("#error-message") == rules.prompt_too_long(1100).message
    save_screenshot(page, "refused")


def test_history_copy_as_python_and_curl_reproduce_the_video(
    page: Page, studio: Studio, tmp_path: Path
) -> None:
    image = tmp_path / "meadow.png"
    image.write_bytes(png_bytes(640, 360, color=(60, 140, 60), square=(100, 100)))
    open_studio(page, studio)
    page.set_input_files("#file-image", str(image))
    page.fill("#prompt", 'wind over a meadow, it\'s "quiet"')  # quotes survive both snippets
    choose(page, "durationSeconds", "4")
    generate_and_watch(page)
    [source] = result_sources(page)
    original = frames(fetch(studio, source, tmp_path / "original.mp4"))
    meadow = card(page, 'wind over a meadow, it\'s "quiet"')

    for kind, runner in (
        ("python", [sys.executable, "snippet.py"]),
        ("curl", ["bash", "snippet.sh"]),
    ):
        page.click(f"{meadow} [data-action='{kind}']")
        page.wait_for_function(
            "w => document.querySelector('#toast').textContent.startsWith('Copied ' + w)",
            arg="Python" if kind == "python" else "curl",
        )
        code = page.evaluate("() => navigator.clipboard.readText()")
        workdir = tmp_path / kind
        workdir.mkdir()
        (workdir / "meadow.png").write_bytes(image.read_bytes())
        (workdir / runner[1]).write_text(code)
        run = subprocess.run(
            runner,
            cwd=workdir,
            env={"GEMINI_API_KEY": studio.key, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert run.returncode == 0, f"{kind}:\n{code}\n{run.stdout}\n{run.stderr}"
        again = frames(workdir / "cinegen_0.mp4")
        assert len(again) == len(original)
        assert all(np.array_equal(a, b) for a, b in zip(again, original, strict=True)), (
            f"the {kind} code reproduces the same video (same seed, same inputs)"
        )

    page.click("#history-refresh")
    name = page.get_attribute(meadow, "data-name")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"{meadow} [data-action='delete']")
    page.wait_for_selector(meadow, state="detached")
    assert studio.api.get(f"/v1beta/{name}").status_code == 404
    save_screenshot(page, "history-after-delete")


def test_cancel_from_the_progress_bar(page: Page, studio: Studio) -> None:
    open_studio(page, studio)
    page.fill("#prompt", "a very long sunset over the sea")
    choose(page, "resolution", "4k")  # 8 s at 4k: about ten seconds of work, time to catch it
    page.click("#generate")
    page.wait_for_function(
        "() => Number(document.querySelector('#progress-bar').getAttribute('aria-valuenow')) > 0"
    )
    page.click("#progress-cancel")
    page.wait_for_selector("#stage-error:not([hidden])", timeout=60_000)
    assert page.text_content("#error-title") == "Cancelled"
    name = page.get_attribute("#history-list .card", "data-name")
    op = studio.api.get(f"/v1beta/{name}").json()
    assert op["metadata"]["state"] == "CANCELLED"
    assert page.text_content("#error-message") == op["error"]["message"]
    page.wait_for_selector(f"#history-list .card[data-name='{name}'][data-state='CANCELLED']")


def test_history_is_this_keys_operations_newest_first(page: Page, studio: Studio) -> None:
    names = []
    for prompt in ("first of two", "second of two"):
        response = studio.api.post(
            "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
            json={"instances": [{"prompt": prompt}], "parameters": {"durationSeconds": 4}},
        )
        assert response.status_code == 200, response.text
        names.append(response.json()["name"])
    open_studio(page, studio)
    page.wait_for_selector(f"#history-list .card[data-name='{names[1]}']")
    shown = page.eval_on_selector_all("#history-list .card", "els => els.map(e => e.dataset.name)")
    listed = [op["name"] for op in studio.api.get("/v1beta/operations").json()["operations"]]
    assert shown[: len(listed)] == listed[: len(shown)]
    assert shown.index(names[1]) < shown.index(names[0])
    # Made by another client: the page cannot know the request, and says so.
    other = f"#history-list .card[data-name='{names[1]}']"
    assert page.text_content(f"{other} .card-prompt") == "Created by another client"
    assert page.is_disabled(f"{other} [data-action='python']")
    for name in names:  # leave the server idle for the next test
        studio.api.post(f"/v1beta/{name}:cancel")


def test_phone_width_and_keyboard_only(browser, studio: Studio, page_errors) -> None:  # noqa: ANN001
    context = new_context(browser, studio, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        open_studio(page, studio)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        def tab_to(predicate: str, limit: int = 80) -> None:
            for _ in range(limit):
                page.keyboard.press("Tab")
                if page.evaluate(
                    f"() => {{ const e = document.activeElement; return {predicate}; }}"
                ):
                    return
            raise AssertionError(f"Tab never reached {predicate}")

        tab_to("e.id === 'prompt'")
        page.keyboard.type("a hummingbird at a feeder, slow motion")
        tab_to("e.name === 'durationSeconds'")
        page.keyboard.press("ArrowLeft")  # 8 s → 6 s (5 s and 7 s are disabled, so skipped)
        page.keyboard.press("ArrowLeft")  # → 4 s
        assert option_state(page, "durationSeconds", "4")["checked"]
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#stage-progress:not([hidden])")
        page.wait_for_selector("#stage-results:not([hidden]) video", timeout=GENERATION_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        # From the history, by keyboard: Play puts the video on the stage and starts it.
        hummingbird = card(page, "a hummingbird at a feeder, slow motion")
        page.evaluate("document.activeElement.blur()")
        tab_to(f"e.matches(\"{hummingbird} [data-action='play']\")", limit=200)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => { const v = document.querySelector('#stage-results video');"
            " return v && !v.paused && v.currentTime > 0.3; }",
            timeout=15_000,
        )
        save_screenshot(page, "phone-keyboard")
    finally:
        context.close()
    assert not page_errors, page_errors


def test_api_key_is_asked_for_and_kept_in_the_browser(browser, studio: Studio) -> None:  # noqa: ANN001
    context = new_context(browser, studio, key=False)
    page = context.new_page()
    try:
        page.goto(studio.url + "/")
        page.wait_for_selector("#stage-error:not([hidden])")
        unauthenticated = studio.api.get("/v1beta/models", headers={"x-goog-api-key": ""})
        assert page.text_content("#error-message") == unauthenticated.json()["error"]["message"]
        assert page.text_content("#server-status") == "key needed"
        save_screenshot(page, "key-needed")

        page.click("#error-key")
        page.fill("#key-input", "cg-not-a-key")
        page.click("#key-save")
        page.wait_for_function(
            "() => document.querySelector('#error-message').textContent.includes('not valid')"
        )
        assert (
            page.text_content("#error-message") == "API key not valid. Please pass a valid API key."
        )

        page.click("#key-button")
        page.fill("#key-input", studio.key)
        page.keyboard.press("Enter")
        page.wait_for_selector("#server-status.ok")
        assert page.is_hidden("#stage-error")
        assert page.evaluate("localStorage.getItem('cinegen.apiKey')") == studio.key
        assert context.cookies() == [], "the key stays in the browser's storage, not in cookies"
        page.reload()
        page.wait_for_selector("#server-status.ok")
        assert studio.key[-4:] in page.text_content("#key-label")
        save_screenshot(page, "key-saved")
    finally:
        context.close()
