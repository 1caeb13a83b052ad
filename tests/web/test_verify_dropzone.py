"""The playground's "Verify a video" drop zone: a video the server made, dropped on it (a real
`drop` event with the file in its DataTransfer), shows "C2PA: valid" and the model and seed;
a plain MP4 shows no credentials; a file that is not a video shows the server's refusal."""

from __future__ import annotations

import base64
import io

import av
import numpy as np
import pytest
from playwright.sync_api import Page

from tests.helpers import sample_uris, wait_done
from tests.support.web import Studio, open_studio, save_screenshot

pytestmark = pytest.mark.xdist_group("web")

MODEL = "veo-3.1-generate-preview"


def _made(studio: Studio) -> bytes:
    body = {
        "instances": [{"prompt": "a red kite"}],
        "parameters": {"durationSeconds": 4, "seed": 2024},
    }
    created = studio.api.post(f"/v1beta/models/{MODEL}:predictLongRunning", json=body)
    assert created.status_code == 200, created.text
    op = wait_done(studio.api, created.json()["name"])
    return studio.api.get(sample_uris(op)[0], follow_redirects=True).content


def _plain_mp4() -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(
                np.full((64, 64, 3), i * 30, np.uint8), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


def _drop(page: Page, name: str, data: bytes, mime: str = "video/mp4") -> None:
    """Drop a file on the zone as a person's drag from the desktop does."""
    transfer = page.evaluate_handle(
        """([name, b64, mime]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], name, { type: mime }));
          return dt;
        }""",
        [name, base64.b64encode(data).decode(), mime],
    )
    page.dispatch_event("#verify-drop", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#verify-drop", "drop", {"dataTransfer": transfer})


def test_a_generated_video_dropped_shows_valid_credentials_and_its_model(
    page: Page, studio: Studio
) -> None:
    video = _made(studio)
    open_studio(page, studio)
    _drop(page, "kite.mp4", video)
    page.wait_for_selector("#verify-result .verify-c2pa h3")
    result = page.text_content("#verify-result") or ""
    assert page.text_content("#verify-result .verify-c2pa h3").startswith("C2PA: valid")
    assert MODEL in result and "2024" in result and "c2pa.created" in result
    assert "signer not trusted" in result  # the development certificate
    assert "Tags: AI-generated" in result
    assert page.text_content("#verify-result .verify-watermark h3") == "Watermark: foundmade here"
    save_screenshot(page, "verify-dropped")


def test_a_plain_mp4_has_no_credentials_and_text_is_refused(page: Page, studio: Studio) -> None:
    open_studio(page, studio)
    _drop(page, "plain.mp4", _plain_mp4())
    page.wait_for_selector("#verify-result .verify-c2pa h3")
    assert page.text_content("#verify-result .verify-c2pa h3").startswith("C2PA: none")
    assert page.text_content("#verify-result .verify-watermark h3") == "Watermark: none found"
    _drop(page, "notes.txt", b"hello", "text/plain")
    page.wait_for_selector("#verify-result .verify-error")
    assert "not an MP4 video" in (page.text_content("#verify-result .verify-error") or "")
