"""What a video would have cost on Google's Veo: list prices per second of video made.

Usage metering (service/usage.py) prices every succeeded operation with this table, so a team
sees what the same requests would have cost on the hosted API. A price is per second of
video made, for each sample, as Google bills it; only a video that succeeded is billed.

Sources, per row (USD per second):

| model | audio | 720p / 1080p | 4k | source |
|---|---|---|---|---|
| Veo 3.1, Veo 3 (standard) | with | 0.40 | 0.60 | seeds; 4k: third party |
| Veo 3.1 Fast, Veo 3 Fast | with | 0.15 | 0.35 | seeds; 4k: third party |
| Veo 3.1, Veo 3 (standard) | without | 0.20 | 0.60 | third party |
| Veo 3.1 Fast, Veo 3 Fast | without | 0.10 | 0.35 | third party |
| Veo 3.1 Lite | with | 0.05 (720p), 0.08 (1080p) | none | third party |
| Veo 3.1 Lite | without | 0.03 (720p), 0.05 (1080p) | none | third party |
| Veo 2 | never | 0.35 | none | third party |

- seeds: shared/seeds/002 (a guide quoting the Gemini API price page, November 2025):
  "标准版 $0.40/秒, Fast 版 $0.15/秒", the same for Veo 3.0 and Veo 3.1 ("Veo 3.0 $0.40/秒
  $0.15/秒; Veo 3.1 $0.40/秒 $0.15/秒"), 720p and 1080p alike ("8 秒 1080p 视频(标准版):
  $0.40 × 8"; "8 秒 720p 视频(Fast 版): $0.15 × 8"). These are the with-audio prices: Veo 3
  and 3.1 make audio by default. The seeds price nothing else.
- third party (not in the seeds; Google's price page was not available here):
  without audio, half the standard price and two thirds of Fast's: docs.qingbo.dev's Veo
  page ("enabling generate_audio doubles the unit price"; its resold prices are 0.8 times
  0.20/0.40 and 0.10/0.15). 4k: docs.dev.xavier.icvr.xyz's Veo 3.1 page (0.60 standard,
  0.35 Fast "at 4K"; qingbo's 4k Fast is 0.8 × 0.35); 4k is made with audio only, so the
  same price without. Lite: lumenfall.ai's Veo 3.1 Lite page, quoting the Gemini API price
  page (audio 0.05 at 720p, 0.08 at 1080p; its no-audio prices "inferred from the
  published Vertex AI Veo 3.1 Lite pricing"). Veo 2: gptproto.com's Veo 2 guide (0.35).
- A model outside Veo's families (an open-weight engine's own id) has no Veo price: None.
"""

from __future__ import annotations

from dataclasses import dataclass

from cinegen.core.catalog import ModelInfo

# (family, tier, audio) -> price per second at 720p and 1080p; 4k below.
_PER_SECOND: dict[tuple[str, str, bool], float] = {
    ("veo-3", "standard", True): 0.40,  # seeds
    ("veo-3", "fast", True): 0.15,  # seeds
    ("veo-3", "standard", False): 0.20,
    ("veo-3", "fast", False): 0.10,
    ("veo-2", "standard", False): 0.35,
}
_LITE: dict[tuple[str, bool], float] = {
    ("720p", True): 0.05,
    ("1080p", True): 0.08,
    ("720p", False): 0.03,
    ("1080p", False): 0.05,
}
_PER_SECOND_4K: dict[str, float] = {"standard": 0.60, "fast": 0.35}


@dataclass(frozen=True)
class VeoPrice:
    """A per-second list price, and which table row it came from (for the README and
    the usage rows)."""

    per_second: float
    tier: str


def tier_of(model_id: str) -> str:
    """`fast`, `lite` or `standard`, from the Veo model id (the catalog's tiers)."""
    if "-fast-" in model_id:
        return "fast"
    if "-lite-" in model_id:
        return "lite"
    return "standard"


def veo_price(row: ModelInfo | None, resolution: str, audio: bool) -> VeoPrice | None:
    """Veo's price per second for a video of `row`'s model at `resolution`, with or without
    audio; None for a model Veo has no price for."""
    if row is None:
        return None
    family = {"veo-3.1": "veo-3", "veo-3.0": "veo-3", "veo-2": "veo-2"}.get(row.family)
    if family is None:
        return None
    tier = tier_of(row.id)
    if family == "veo-2":
        return VeoPrice(_PER_SECOND[("veo-2", "standard", False)], "veo-2")
    if tier == "lite":
        price = _LITE.get((resolution, audio))
        return VeoPrice(price, "lite") if price is not None else None
    if resolution == "4k":
        return VeoPrice(_PER_SECOND_4K[tier], f"{tier} 4k")
    return VeoPrice(_PER_SECOND[(family, tier, audio)], tier if audio else f"{tier} no audio")
