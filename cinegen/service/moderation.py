"""The moderation hook: an operator's HTTP endpoint that allows or denies a prompt.

`POST CINEGEN_MODERATION_URL` with `{"prompt", "negativePrompt", "model"}`; the answer is
`{"allow": true|false, "reason": "..."}` with a 2xx status. It is guarded as webhooks are
(media/fetch.py): the host is resolved once and must be public, the connection goes to
exactly that address, https only, no redirects; `CINEGEN_FETCH_ALLOW_HOSTS` lifts both
checks for a host on the operator's own network.

It fails closed. A hook that does not answer within `moderation_timeout_seconds`, answers
another status, or answers something that is not that JSON, refuses the create with 503
UNAVAILABLE (nothing is kept; the client may try again). An operator who sets the hook asks
that no prompt be generated unscreened: letting prompts through while the moderator is down,
or while a client makes it time out with huge prompts, would turn every outage into a bypass.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from cinegen.core.errors import Unavailable
from cinegen.core.request import GenerateRequest
from cinegen.media.fetch import FetchError, FetchPolicy, TargetRefused, post_guarded, post_policy
from cinegen.settings import Settings

log = logging.getLogger("cinegen.moderation")

USER_AGENT = "cinegen-moderation/1"
MAX_ANSWER_BYTES = 64 * 1024
UNAVAILABLE_MESSAGE = (
    "The prompt could not be screened: this server's moderation service did not give an "
    "answer. Try again later."
)


@dataclass(frozen=True)
class Verdict:
    allow: bool
    reason: str = ""


class HookFailed(Exception):
    """No usable answer from the hook; `reason` is for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def hook_policy(settings: Settings) -> FetchPolicy:
    """The webhooks' guard (public addresses, pinned), with the hook's own timeout."""
    return post_policy(settings.fetch_allow_hosts, settings.moderation_timeout_seconds)


def judge(req: GenerateRequest, settings: Settings) -> Verdict:
    """The hook's verdict on `req`; `Unavailable` (503) when there is none."""
    body = {
        "prompt": req.prompt or "",
        "negativePrompt": req.negative_prompt or "",
        "model": req.model,
    }
    try:
        return parse_answer(*post_json(settings.moderation_url, body, hook_policy(settings)))
    except HookFailed as exc:
        log.warning("moderation hook failed, create refused (fail closed): %s", exc.reason)
        raise Unavailable(UNAVAILABLE_MESSAGE) from exc


def post_json(url: str, body: dict[str, Any], policy: FetchPolicy) -> tuple[int, bytes]:
    """POST `body` as JSON under `policy`, once; the status and up to MAX_ANSWER_BYTES."""
    headers = {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    try:
        answer = post_guarded(
            url, json.dumps(body).encode(), headers, policy, read_limit=MAX_ANSWER_BYTES + 1
        )
    except TargetRefused as exc:
        raise HookFailed(f"target refused: {exc.reason}") from exc
    except FetchError as exc:
        raise HookFailed(exc.reason) from exc
    return answer.status, answer.body


def parse_answer(status: int, data: bytes) -> Verdict:
    """`{"allow": bool, "reason": str?}` from a 2xx answer, or HookFailed."""
    if not 200 <= status < 300:
        raise HookFailed(f"answered HTTP {status}")
    if len(data) > MAX_ANSWER_BYTES:
        raise HookFailed(f"answer over {MAX_ANSWER_BYTES} bytes")
    try:
        answer = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HookFailed("answer is not JSON") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("allow"), bool):
        raise HookFailed('answer has no boolean "allow"')
    reason = answer.get("reason")
    return Verdict(answer["allow"], reason if isinstance(reason, str) else "")
