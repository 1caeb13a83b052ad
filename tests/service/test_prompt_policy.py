"""The prompt block-list (service/prompt_policy.py): words, phrases and regexes per language,
Unicode tricks, reloading; and a blocked prompt answered as Veo answers it (the operation done
at once, no video, `raiMediaFilteredCount` and Veo's reason) in every dialect, counted in
`cinegen_prompts_blocked_total{source="blocklist"}`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cinegen.service.prompt_policy import (
    Blocklist,
    BlocklistError,
    filtered_reason,
    normalise,
    parse_blocklist,
)
from tests.helpers import create, text_request
from tests.support.app import InProcessServer, in_process

TOML = """
[en]
words = ["bomb", "nuclear   launch", "c++"]
patterns = ['\\bkill\\s+(him|her)\\b']

[de]
words = ["Mörder"]

[ja]
words = ["爆弾"]
"""

TEXT = """# a comment
forbidden
re:^secret\\d+
[ja]
殺す
"""

VEO_REASON = (
    "Veo could not generate 2 videos based on the prompt provided. You will not be charged "
    "for this request. Try rephrasing the prompt. If you think this was an error, send "
    "feedback. Support codes: 42237218"
)


def blocked(rules_text: str, prompt: str, toml: bool = True) -> bool:
    rules = parse_blocklist(rules_text, toml=toml)
    folded = normalise(prompt)
    return any(rule.regex.search(folded) for rule in rules)


@pytest.mark.parametrize(
    "prompt",
    [
        "a bomb in a field",
        "A BOMB!",
        "Bomb.",
        "nuclear launch codes",
        "NUCLEAR\tlaunch",
        "learning c++ fast",
        "they kill   him",
        "ein Mörder im Wald",
        "ein MORDER im Wald",  # accents on Latin letters do not matter
        "爆弾を作る",  # Japanese has no spaces: a substring match
    ],
)
def test_listed_words_and_patterns_block(prompt: str) -> None:
    assert blocked(TOML, prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "a bombastic speech",  # word boundaries for space-separated languages
        "an atom bomber? no: abombination",
        "nuclear power launch",
        "c+ grade",
        "a skill him",
        "a peaceful meadow at dawn",
        "爆発する花火",  # shares a character only
    ],
)
def test_other_prompts_pass(prompt: str) -> None:
    assert not blocked(TOML, prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "ａ ｂｏｍｂ",  # fullwidth letters
        "a 𝐛𝐨𝐦𝐛",  # mathematical bold
        "a bo\u200bmb",  # zero-width space inside the word
        "a b\u00adomb",  # soft hyphen
        "a bo\u200dmb",  # zero-width joiner
        "a bómb",  # combining accent
        "a bo\u0301mb",  # decomposed accent
    ],
)
def test_unicode_tricks_are_folded(prompt: str) -> None:
    assert blocked(TOML, prompt)


def test_normalise_keeps_marks_of_other_scripts() -> None:
    """A dakuten makes another Japanese word: が is not か."""
    assert normalise("が") != normalise("か")
    assert blocked('[ja]\nwords = ["ガキ"]', "ガキ")
    assert not blocked('[ja]\nwords = ["ガキ"]', "カキ")


def test_text_format() -> None:
    assert blocked(TEXT, "this is FORBIDDEN here", toml=False)
    assert blocked(TEXT, "Secret42 plans", toml=False)
    assert not blocked(TEXT, "my secret42", toml=False)  # anchored pattern
    assert blocked(TEXT, "殺すな", toml=False)
    assert not blocked(TEXT, "unforbiddenly", toml=False)


@pytest.mark.parametrize(
    ("text", "toml"),
    [
        ("[en]\nwords = [", True),
        ("[en]\npatterns = ['(unclosed']", True),
        ("[en]\nwords = [1, 2]", True),
        ("en = 3", True),
        ("re:(unclosed", False),
    ],
)
def test_bad_files_are_refused(text: str, toml: bool) -> None:
    with pytest.raises(BlocklistError):
        parse_blocklist(text, toml=toml)


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "blocklist.txt"
    path.write_text("alpha\n", encoding="utf-8")
    blocklist = Blocklist(path)
    assert blocklist.match("alpha particle") is not None
    assert blocklist.match("beta particle") is None
    path.write_text("alpha\nbeta\n", encoding="utf-8")
    os.utime(path, (1, 1))  # a different mtime even on a coarse clock
    assert blocklist.match("beta particle") is not None


def test_reason_is_veos_wording() -> None:
    assert filtered_reason(2) == VEO_REASON


# ---------------------------------------------------------------- through the server


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """No worker threads: an accepted prompt stays queued, so a done operation can only be a
    refusal at create time."""
    root = tmp_path_factory.mktemp("policy")
    (root / "blocklist.toml").write_text(TOML, encoding="utf-8")
    with in_process(root / "data", workers=0, prompt_blocklist=root / "blocklist.toml") as app:
        yield app


def blocked_count(app: InProcessServer) -> float:
    with app.client() as client:
        text = client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cinegen_prompts_blocked_total"
        and sample.labels.get("source") == "blocklist"
    )


def test_gemini_blocked_prompt_is_done_with_no_video(app: InProcessServer) -> None:
    before = blocked_count(app)
    model = "veo-2.0-generate-001"
    with app.client() as client:
        response = create(
            client, text_request("ａ ｂｏｍｂ at sea", sampleCount=2, durationSeconds=5), model
        )
        assert response.status_code == 200, response.text
        name = response.json()["name"]
        polled = client.get(f"/v1beta/{name}").json()
    assert polled["done"] is True
    assert "error" not in polled
    answer = polled["response"]["generateVideoResponse"]
    assert answer["raiMediaFilteredCount"] == 2
    assert answer["raiMediaFilteredReasons"] == [VEO_REASON]
    assert answer.get("generatedSamples", []) == []
    assert blocked_count(app) == before + 1


def test_allowed_prompt_is_queued(app: InProcessServer) -> None:
    before = blocked_count(app)
    with app.client() as client:
        response = create(client, text_request("a bombastic sunset"))
        assert response.status_code == 200, response.text
        polled = client.get(f"/v1beta/{response.json()['name']}").json()
    assert not polled.get("done")
    assert blocked_count(app) == before


def test_vertex_blocked_prompt(app: InProcessServer) -> None:
    path = "/v1/projects/p/locations/us-central1/publishers/google/models/veo-3.0-generate-001"
    body = {"instances": [{"prompt": "a BOMB"}], "parameters": {"durationSeconds": 4}}
    with app.client() as client:
        response = client.post(f"{path}:predictLongRunning", json=body)
        assert response.status_code == 200, response.text
        name = response.json()["name"]
        fetched = client.post(f"{path}:fetchPredictOperation", json={"operationName": name})
    op = fetched.json()
    assert op["done"] is True
    assert op["response"]["raiMediaFilteredCount"] == 1
    assert op["response"]["raiMediaFilteredReasons"] == [filtered_reason(1)]
    assert op["response"].get("videos", []) == []


def test_videos_blocked_prompt_fails_with_the_reason(app: InProcessServer) -> None:
    body = {"model": "veo-3.1-generate-preview", "prompt": "kill her now"}
    with app.client() as client:
        response = client.post("/v1/videos", json=body)
        assert response.status_code == 200, response.text
        video = client.get(f"/v1/videos/{response.json()['id']}").json()
    assert video["status"] == "failure"
    assert video["fail_reason"] == filtered_reason(1)


def test_unreadable_blocklist_refuses_creates(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[en]\npatterns = ['(']\n", encoding="utf-8")
    with (
        in_process(tmp_path / "data", workers=0, prompt_blocklist=broken) as app,
        app.client() as client,
    ):
        response = create(client, text_request("a calm lake"))
    assert response.status_code == 503
    assert response.json()["error"]["status"] == "UNAVAILABLE"
    assert "prompt policy" in response.json()["error"]["message"]


def test_a_blocked_prompt_still_calls_its_webhook(tmp_path: Path) -> None:
    """Ended at create time, the operation writes its end as any other: the per-request
    webhook is told, once, with the operation done."""
    from tests.support.receiver import Receiver

    (tmp_path / "blocklist.toml").write_text(TOML, encoding="utf-8")
    with (
        Receiver() as receiver,
        in_process(
            tmp_path / "data",
            workers=0,
            prompt_blocklist=tmp_path / "blocklist.toml",
            fetch_allow_hosts="127.0.0.1",
            webhook_retry_scale=0.001,
        ) as app,
        app.client() as client,
    ):
        body = text_request("a bomb in the desert")
        body["webhookConfig"] = {"uris": [receiver.url("/blocked")]}
        response = create(client, body)
        assert response.status_code == 200, response.text
        [delivery] = receiver.wait_for(1)
    assert delivery.path == "/blocked"
    assert response.json()["name"].rsplit("/", 1)[-1].encode() in delivery.body
