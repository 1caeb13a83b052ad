"""The playground's webhook badges: a finished operation's card says whether its webhook was
delivered, from cinegen's `GET /v1beta/operations/{id}/webhookDeliveries`.

Its own server (not the shared `studio`): http targets must be allowed
(`CINEGEN_FETCH_ALLOW_HOSTS`), and a static webhook would receive every other test's
operations.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.support.receiver import Receiver
from tests.support.server import REPO, ServerProcess
from tests.support.web import Errors, Studio, new_context, open_studio, save_screenshot

pytestmark = pytest.mark.xdist_group("web")

GENERATION_MS = 180_000


@pytest.fixture(scope="module")
def hooked_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    server = ServerProcess(
        tmp_path_factory.mktemp("web-webhooks"),
        env_extra={"CINEGEN_WORKERS": "1", "CINEGEN_FETCH_ALLOW_HOSTS": "127.0.0.1"},
    )
    created = subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "keys", "create", "--name", "browser"],
        env=server.env(),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    server.start(timeout=120)
    studio = Studio(server, created.stdout.strip())
    yield studio
    studio.api.close()
    server.stop()


def test_history_card_shows_the_webhook_delivered(
    browser: Browser, hooked_studio: Studio, page_errors: Errors
) -> None:
    studio = hooked_studio
    with Receiver() as receiver:
        hook = studio.api.post(
            "/v1beta/webhooks",
            json={"uri": receiver.url(), "subscribed_events": ["video.generated"]},
        )
        assert hook.status_code == 200, hook.text
        made = studio.api.post(
            "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
            json={"instances": [{"prompt": "a heron"}], "parameters": {"durationSeconds": 4}},
        )
        assert made.status_code == 200, made.text
        name = made.json()["name"]
        context = new_context(browser, studio)
        page = context.new_page()
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        try:
            open_studio(page, studio)
            badge = f"#history-list .card[data-name='{name}'] .webhook-badge"
            page.wait_for_selector(f"{badge}.webhook-delivered", timeout=GENERATION_MS)
            host = f"{receiver.host}:{receiver.port}"
            assert page.text_content(badge) == f"webhook: delivered (200) · {host}"
            [delivery] = receiver.wait_for(1)
            op_id = name.rsplit("/", 1)[-1]
            listed = studio.api.get(f"/v1beta/operations/{op_id}/webhookDeliveries").json()
            assert listed["deliveries"][0]["message_id"] == delivery.headers["webhook-id"]
            # The other states' wording, from the same function the cards use.
            texts = page.evaluate(
                """async () => {
                  const { webhookBadge } = await import('/static/history.js');
                  const base = { target_host: 'h.example:8443', attempts: [] };
                  return [
                    { state: 'pending', attempt_count: 2, last_status: 503 },
                    { state: 'failed', attempt_count: 10, last_error: 'timed out' },
                    { state: 'pending', attempt_count: 0 },
                  ].map((d) => webhookBadge({ ...base, ...d }).textContent);
                }"""
            )
            assert texts == [
                "webhook: retrying (attempt 2) · h.example:8443",
                "webhook: failed · h.example:8443",
                "webhook: sending · h.example:8443",
            ]
            save_screenshot(page, "webhook-badge-delivered")
        finally:
            context.close()
    assert not page_errors, f"JavaScript errors on the page: {page_errors}"
