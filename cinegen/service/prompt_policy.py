"""The prompt policy: a block-list file and an optional moderation hook, checked at create.

Veo does not answer a refused prompt with an HTTP error: the create succeeds, and the
operation is done at once with no video, `raiMediaFilteredCount` set and a reason in
`raiMediaFilteredReasons` (shared/spec/veo-rules.md §5, google-genai-sdk-wire.md "RAI-filtered
(no samples)"). `screen` gives that reason, and `service/operations.py` ends the operation
with it without running a job.

The block-list (`CINEGEN_PROMPT_BLOCKLIST`) is TOML or text, one section per language code
(README "Safety: people and prompts"). Every section applies to every prompt, since a request
does not say its language; the code decides how words match: with word boundaries for
languages written with spaces, as substrings for those written without (`SUBSTRING_LOCALES`).
Prompt and list are normalised alike (`normalise`), so fullwidth letters, ligatures,
mathematical letters, invisible characters and accents on Latin letters do not slip past.
"""

from __future__ import annotations

import logging
import re
import threading
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cinegen.core import metrics
from cinegen.core.errors import Unavailable
from cinegen.core.request import GenerateRequest
from cinegen.service import moderation
from cinegen.settings import Settings

log = logging.getLogger("cinegen.policy")

# Veo's words for a prompt it will not generate (spec veo-rules.md §5, with its support code
# 42237218), and the code of Google's "Person/Face" category ("Detects a person or face when
# it isn't allowed due to the request safety settings": the Vertex AI responsible-AI page's
# table of safety filter codes) for a sample dropped under personGeneration `dont_allow`.
PROMPT_SUPPORT_CODE = "42237218"
PERSON_SUPPORT_CODE = "39322892"
_REASON = (
    "Veo could not generate {count} videos based on the prompt provided. You will not be "
    "charged for this request. Try rephrasing the prompt. If you think this was an error, "
    "send feedback. Support codes: {code}"
)
# Languages written without spaces between words: a listed word matches anywhere in them.
SUBSTRING_LOCALES = frozenset({"ja", "zh", "ko", "th", "lo", "km", "my", "bo"})
_UNREADABLE = (
    "The server's prompt policy could not be read, so no prompt is accepted until it is "
    "fixed. Try again later."
)


def filtered_reason(count: int, code: str = PROMPT_SUPPORT_CODE) -> str:
    """Veo's `raiMediaFilteredReasons` entry for `count` videos not generated."""
    return _REASON.format(count=count, code=code)


def normalise(text: str) -> str:
    """Compatibility forms folded (fullwidth, ligatures, math letters: NFKC), case folded,
    invisible format characters (zero-width space, joiners, soft hyphen) dropped, and the
    accents of Latin letters taken off; other scripts keep their marks (a Japanese dakuten
    changes the word)."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept: list[str] = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category == "Cf":
            continue
        if category == "Mn" and kept and kept[-1] < "\u0250":  # a mark on a Latin letter
            continue
        kept.append(char)
    return unicodedata.normalize("NFKC", "".join(kept)).casefold()


@dataclass(frozen=True)
class Rule:
    locale: str
    source: str  # the word or pattern as written in the file (for the log)
    regex: re.Pattern[str]


def _word_rule(locale: str, word: str) -> Rule | None:
    folded = normalise(word).strip()
    if not folded:
        return None
    escaped = r"\s+".join(re.escape(part) for part in folded.split())
    if locale.split("-")[0].split("_")[0].lower() not in SUBSTRING_LOCALES:
        escaped = rf"(?<!\w){escaped}(?!\w)"
    return Rule(locale, word, re.compile(escaped))


def _pattern_rule(locale: str, pattern: str) -> Rule:
    return Rule(locale, pattern, re.compile(pattern, re.IGNORECASE))


class BlocklistError(ValueError):
    """The block-list file cannot be used (unreadable, bad TOML, a bad regex)."""


def parse_blocklist(text: str, toml: bool) -> list[Rule]:
    """The rules of a block-list file's text (`toml`: TOML, else the text format)."""
    sections = _toml_sections(text) if toml else _text_sections(text)
    rules: list[Rule] = []
    try:
        for locale, (words, patterns) in sections.items():
            rules.extend(rule for word in words if (rule := _word_rule(locale, word)))
            rules.extend(_pattern_rule(locale, pattern) for pattern in patterns)
    except re.error as exc:
        raise BlocklistError(f"a pattern does not compile: {exc}") from exc
    return rules


def _toml_sections(text: str) -> dict[str, tuple[list[str], list[str]]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BlocklistError(f"not valid TOML: {exc}") from exc
    sections: dict[str, tuple[list[str], list[str]]] = {}
    for locale, table in data.items():
        if not isinstance(table, dict):
            raise BlocklistError(f"[{locale}] must be a table with `words` and `patterns`")
        words, patterns = table.get("words", []), table.get("patterns", [])
        if not _strings(words) or not _strings(patterns):
            raise BlocklistError(f"[{locale}] `words` and `patterns` must be lists of strings")
        sections[locale] = (list(words), list(patterns))
    return sections


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _text_sections(text: str) -> dict[str, tuple[list[str], list[str]]]:
    """One entry a line: a word or phrase, or `re:` and a regex; `[xx]` starts language
    `xx` (lines before any header are `*`, matched with word boundaries); `#` comments."""
    sections: dict[str, tuple[list[str], list[str]]] = {}
    locale = "*"
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            locale = line[1:-1].strip() or "*"
            continue
        words, patterns = sections.setdefault(locale, ([], []))
        if line.startswith("re:"):
            patterns.append(line[3:].strip())
        else:
            words.append(line)
    return sections


class Blocklist:
    """The rules of the block-list file, read again when the file changes (its mtime and
    size), so an operator edits it without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def rules(self) -> list[Rule]:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise BlocklistError(f"{self.path}: {exc.strerror}") from exc
        stamp = (stat.st_mtime, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    text = self.path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise BlocklistError(f"{self.path}: {exc}") from exc
                self._rules = parse_blocklist(text, toml=self.path.suffix.lower() == ".toml")
                self._stamp = stamp
            return self._rules

    def match(self, prompt: str) -> Rule | None:
        """The first rule the prompt matches, or None."""
        folded = normalise(prompt)
        return next((rule for rule in self.rules() if rule.regex.search(folded)), None)


_BLOCKLISTS: dict[Path, Blocklist] = {}
_BLOCKLISTS_LOCK = threading.Lock()


def blocklist_for(path: Path) -> Blocklist:
    """One `Blocklist` per file and process, so the parsed rules are shared."""
    with _BLOCKLISTS_LOCK:
        return _BLOCKLISTS.setdefault(path, Blocklist(path))


def screen(req: GenerateRequest, settings: Settings) -> str | None:
    """Veo's reason when the prompt policy refuses `req` (block-list first, then the
    moderation hook), else None. `Unavailable` when the policy cannot judge: an unreadable
    block-list or a failed hook refuse every create rather than let prompts through."""
    count = req.sample_count or 1
    if settings.prompt_blocklist is not None and req.prompt:
        try:
            rule = blocklist_for(settings.prompt_blocklist).match(req.prompt)
        except BlocklistError as exc:
            log.error("prompt block-list unusable: %s", exc)
            raise Unavailable(_UNREADABLE) from exc
        if rule is not None:
            log.info("prompt blocked by the block-list ([%s] %r)", rule.locale, rule.source)
            metrics.prompt_blocked("blocklist")
            return filtered_reason(count)
    if settings.moderation_url and (req.prompt or req.negative_prompt):
        verdict = moderation.judge(req, settings)
        if not verdict.allow:
            log.info("prompt blocked by the moderation hook: %s", verdict.reason or "(no reason)")
            metrics.prompt_blocked("moderation")
            return filtered_reason(count)
    return None
