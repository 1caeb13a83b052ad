"""Length limits on every free-form string of a request (issue 31 item 4): counted in
characters, whatever the words, with Google's wording; labels by Google Cloud's label rules."""

from __future__ import annotations

import pytest

from cinegen.core import rules
from cinegen.core.request import GenerateRequest, MediaRef, Webhook
from cinegen.core.rules import RuleError, check

MODEL = "veo-3.1-generate-preview"
MEGABYTE = 1024 * 1024


def make(**kw: object) -> GenerateRequest:
    kw.setdefault("prompt", "a cat on a skateboard")
    return GenerateRequest(model=MODEL, **kw)  # type: ignore[arg-type]


def refused(req: GenerateRequest) -> str:
    with pytest.raises(RuleError) as info:
        check(req)
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    return info.value.message


@pytest.mark.parametrize("char", ["a", "!"])
def test_a_megabyte_prompt_of_one_word_or_none_is_refused_by_its_characters(char: str) -> None:
    # Before: one word (or none) by the token count, so it passed.
    assert refused(make(prompt=char * MEGABYTE)) == (
        f"The prompt is too long ({MEGABYTE} characters). "
        "Please provide a prompt of at most 8192 characters."
    )


def test_the_character_limit_sits_above_the_token_limit() -> None:
    # 1024 tokens of ordinary words fit; so do 8192 characters in few tokens.
    words = " ".join(["skateboard"] * 700)  # 7699 characters, 700 tokens
    assert check(make(prompt=words)).prompt == words
    assert check(make(prompt="!" * rules.MAX_PROMPT_CHARACTERS)).prompt is not None
    assert "characters" in refused(make(prompt="!" * (rules.MAX_PROMPT_CHARACTERS + 1)))
    # The token rule still holds below the character limit.
    assert refused(make(prompt=" ".join(["a"] * 1025))) == rules.prompt_too_long(1025).message


def test_negative_prompt_is_limited_in_characters_and_tokens() -> None:
    assert check(make(negative_prompt="blurry, " * 100)).negative_prompt == "blurry, " * 100
    assert refused(make(negative_prompt="!" * MEGABYTE)) == (
        f"The value for `negativePrompt` is too long ({MEGABYTE} characters). "
        "Please provide at most 8192 characters."
    )
    assert refused(make(negative_prompt=" ".join(["no"] * 1100))) == (
        "The value for `negativePrompt` is too long (about 1100 tokens). "
        "Please provide at most 1024 tokens."
    )


def test_labels_follow_google_clouds_rules() -> None:
    ok = {"team": "x", "cost-center_1": "", "é": "ünï-42", "k" * 63: "v" * 63}
    assert check(make(labels=ok)).labels == ok
    many = {f"k{i}": "v" for i in range(65)}
    assert refused(make(labels=many)) == (
        "The request has 65 labels. No more than 64 labels can be associated with a given resource."
    )
    assert check(make(labels={f"k{i}": "v" for i in range(64)})).labels


KEY_WORDS = (
    "Label keys must be between 1 and 63 characters long and must conform to the regular "
    "expression: [\\p{Ll}\\p{Lo}][\\p{Ll}\\p{Lo}\\p{N}_-]{0,62}."
)
VALUE_WORDS = (
    "Label values must be between 0 and 63 characters long and must conform to the regular "
    "expression: [\\p{Ll}\\p{Lo}\\p{N}_-]{0,63}."
)


@pytest.mark.parametrize("key", ["", "Team", "1team", "_team", "-team", "te am", "k" * 64])
def test_bad_label_keys_are_refused(key: str) -> None:
    message = refused(make(labels={key: "x"}))
    assert message.startswith("Invalid label key `") and message.endswith(KEY_WORDS)


def test_a_huge_label_is_refused_without_being_echoed() -> None:
    message = refused(make(labels={"k" * 50 * MEGABYTE: "v"}))
    assert message.endswith(KEY_WORDS) and len(message) < 300
    message = refused(make(labels={"team": "v" * 50 * MEGABYTE}))
    assert message == f"Invalid value for label `team`. {VALUE_WORDS}"


@pytest.mark.parametrize("value", ["X", "a b", "a.b", "v" * 64, "\ud800"])
def test_bad_label_values_are_refused(value: str) -> None:
    assert refused(make(labels={"team": value})) == f"Invalid value for label `team`. {VALUE_WORDS}"


@pytest.mark.parametrize(
    ("kw", "field", "limit"),
    [
        ({"storage_uri": "gs://b/" + "p" * 3000}, "storageUri", 2048),
        ({"resize_mode": "pad" * 100}, "resizeMode", 64),
        ({"aspect_ratio": "9" * 1000}, "aspectRatio", 64),
        ({"image": MediaRef(gcs_uri="gs://b/" + "o" * 3000)}, "image.gcsUri", 2048),
        ({"image": MediaRef(data=b"x", mime_type="image/" + "p" * 300)}, "image.mimeType", 255),
    ],
)
def test_other_free_form_strings_are_bounded(kw: dict, field: str, limit: int) -> None:
    value = next(iter(kw.values()))
    length = len(value) if isinstance(value, str) else len(value.gcs_uri or value.mime_type)
    assert refused(make(**kw)) == (
        f"The value for `{field}` is too long ({length} characters). "
        f"Please provide at most {limit} characters."
    )


def test_webhook_config_is_bounded() -> None:
    ok = Webhook(uris=("https://example.com/hook",), user_metadata={"job": "1"})
    assert check(make(webhook=ok)).webhook == ok
    six = Webhook(uris=tuple(f"https://example.com/{i}" for i in range(6)))
    assert refused(make(webhook=six)) == (
        "The value for `webhookConfig.uris` is too long (6 uris). Please provide at most 5 uris."
    )
    big = Webhook(user_metadata={"blob": "x" * 20000})
    assert refused(make(webhook=big)).startswith(
        "The value for `webhookConfig.userMetadata` is too long ("
    )
