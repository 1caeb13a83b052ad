"""The generation parameters every dialect carries, in one table: the GenerateRequest field,
the name Veo's messages use for it, and the rule that checks its type.

The Gemini/Vertex `parameters` object and the gateway's `metadata` name these fields alike,
so one function turns either wire model into GenerateRequest keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from cinegen.core import rules

Check = Callable[[str, Any], Any]

PARAMETERS: tuple[tuple[str, str, Check], ...] = (
    ("negative_prompt", "negativePrompt", rules.as_string),
    ("aspect_ratio", "aspectRatio", rules.as_string),
    ("resolution", "resolution", rules.as_string),
    ("duration_seconds", "durationSeconds", rules.as_number),
    ("person_generation", "personGeneration", rules.as_string),
    ("seed", "seed", rules.as_number),
    ("sample_count", "sampleCount", rules.as_number),
    ("enhance_prompt", "enhancePrompt", rules.as_bool),
    ("generate_audio", "generateAudio", rules.as_bool),
    ("compression_quality", "compressionQuality", rules.as_string),
    ("storage_uri", "storageUri", rules.as_string),
    ("fps", "fps", rules.as_number),
    ("resize_mode", "resizeMode", rules.as_string),
)
"""(GenerateRequest field, wire name, check)."""


def request_parameters(wire: BaseModel, **raw: Any) -> dict[str, Any]:
    """GenerateRequest keyword arguments for every parameter `wire` has (attribute names are
    the field names), each checked; `raw` gives a value in place of the wire's attribute. A
    parameter the wire model does not have and `raw` does not give is left out."""
    out: dict[str, Any] = {}
    for field, name, check in PARAMETERS:
        if field in raw:
            value = raw[field]
        elif field in type(wire).model_fields:
            value = getattr(wire, field)
        else:
            continue
        out[field] = None if value is None else check(name, value)
    return out
