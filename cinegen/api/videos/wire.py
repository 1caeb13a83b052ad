"""The `POST /v1/videos` body: the gateway's JSON, and the OpenAI SDK's multipart.

The gateway sends JSON (`model`, `prompt`, `images`, `metadata`). The OpenAI Python SDK sends
JSON up to 2.26 and multipart from 2.27 on, where `extra_body` is flattened into bracket-named
fields (`images[]`, `metadata[referenceImages][][image][mimeType]`), repeated keys grouped
together and every value a string. `unflatten_form` rebuilds the nested JSON from those fields
(arrays of objects by position: element i is the i-th occurrence of each leaf key), and
`coerce_form_values` turns the strings Veo wants as numbers or booleans back into them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from cinegen.api.body import loads
from cinegen.core.errors import InvalidArgument

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_INTEGER = re.compile(r"^[+-]?([0-9]+)(\.0+)?$")
_INDEX = re.compile(r"^[0-9]{1,4}$")  # a position in a form array: at most 9999
MAX_FORM_DEPTH = 8  # brackets in one field name: the SDK's deepest is 4
MAX_NUMBER_DIGITS = 30  # far past any Veo number (a seed is at most 10 digits)
NUMBER_FIELDS = ("durationSeconds", "seed", "sampleCount", "numberOfVideos", "fps")
BOOL_FIELDS = ("generateAudio", "enhancePrompt")


@dataclass(frozen=True)
class FilePart:
    """An uploaded file of a multipart body (the SDK's `input_reference`)."""

    data: bytes
    content_type: str | None
    filename: str | None


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")


class WireRefImage(_Wire):
    bytes_base64_encoded: Any = Field(None, alias="bytesBase64Encoded")
    mime_type: StrictStr | None = Field(None, alias="mimeType")


class WireReferenceImage(_Wire):
    image: WireRefImage | None = None
    reference_type: StrictStr | None = Field(None, alias="referenceType")


class WireMetadata(_Wire):
    """The Gemini parameters, as the gateway passes them through."""

    aspect_ratio: Any = Field(None, alias="aspectRatio")
    duration_seconds: Any = Field(None, alias="durationSeconds")
    negative_prompt: Any = Field(None, alias="negativePrompt")
    person_generation: Any = Field(None, alias="personGeneration")
    resolution: Any = None
    reference_images: list[WireReferenceImage] | None = Field(None, alias="referenceImages")
    seed: Any = None
    generate_audio: Any = Field(None, alias="generateAudio")
    enhance_prompt: Any = Field(None, alias="enhancePrompt")
    compression_quality: Any = Field(None, alias="compressionQuality")
    resize_mode: Any = Field(None, alias="resizeMode")
    fps: Any = None


class WireInputReference(_Wire):
    """OpenAI's `{image_url}` form of `input_reference` (a URL or a data URI)."""

    image_url: StrictStr | None = None
    file_id: StrictStr | None = None


class CreateVideoRequest(_Wire):
    model: StrictStr | None = None
    prompt: StrictStr | None = None
    images: list[Any] | None = None  # str, or FilePart from multipart
    metadata: WireMetadata | None = None
    seconds: Any = None  # OpenAI: "4" | "8" | "12"
    size: StrictStr | None = Field(None, max_length=32)  # OpenAI: "1280x720", ...
    input_reference: Any = None  # FilePart, a URL / data URI string, or WireInputReference


class RemixRequest(_Wire):
    prompt: StrictStr = Field(min_length=1)


# ------------------------------------------------------------------------ multipart


def _path(key: str) -> list[str]:
    """`metadata[referenceImages][][image]` → ["metadata", "referenceImages", "", "image"]."""
    head = key.split("[", 1)[0]
    if not head:  # `""` or `[0]`: no field the body could have
        raise InvalidArgument(f"Invalid form field name {key[:60]!r}: it must start with a name.")
    parts = [head, *_BRACKETS.findall(key[len(head) :])]
    if len(parts) > MAX_FORM_DEPTH + 1 or key.count("[") > MAX_FORM_DEPTH:
        raise InvalidArgument(
            f"Invalid form field name {key[:60]!r}: at most {MAX_FORM_DEPTH} levels of brackets."
        )
    return parts


def _set(tree: dict[Any, Any], path: list[Any], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _listify(node: Any) -> Any:
    """Dicts keyed by positions become lists, in position order; in a dict that also has
    names (`a[0]` and `a[b]`), a position is a name like the others (`"0"`), as JSON's are."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(isinstance(k, int) for k in converted):
        return [converted[k] for k in sorted(converted)]
    return {str(k): v for k, v in converted.items()}


def unflatten_form(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Rebuild nested JSON from bracket-named form fields.

    `a[]` appends; in `a[][b]` the i-th `a[][b]` belongs to element i (the SDK groups repeated
    keys, so positions are the only link between the fields of one element); `a[2][b]` is
    explicit. A plain key repeated becomes a list.
    """
    grouped: dict[str, list[Any]] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    tree: dict[Any, Any] = {}
    for key, values in grouped.items():
        parts = _path(key)
        if "" not in parts and "[" not in key:
            tree[key] = values[0] if len(values) == 1 else values
            continue
        for index, value in enumerate(values):
            path: list[Any] = []
            first = True
            for part in parts:
                if part == "":
                    path.append(index if first else 0)
                    first = False
                elif part.isdigit() and path:
                    if not _INDEX.match(part):
                        raise InvalidArgument(
                            f"Invalid form field name {key[:60]!r}: an index is at most 9999."
                        )
                    path.append(int(part))
                else:
                    path.append(part)
            _set(tree, path, value)
    return _listify(tree)


def _json_field(value: Any, opener: str) -> Any:
    """A field sent as one JSON string (`extra_body={"metadata": json.dumps(...)}`)."""
    if isinstance(value, str) and value.lstrip().startswith(opener):
        try:
            json.loads(value, parse_int=_as_is, parse_float=_as_is, parse_constant=_as_is)
        except json.JSONDecodeError:
            return value  # not JSON: left as text, for the model to judge
        except (RecursionError, ValueError):
            pass  # JSON, but too deep or a number too long: `loads` says so
        return loads(value)
    return value


def _as_is(text: str) -> str:
    return text


def _coerce(value: Any, kind: str, name: str) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    match = _INTEGER.match(text) if kind == "number" else None
    if match:
        if len(match.group(1)) > MAX_NUMBER_DIGITS:
            raise InvalidArgument(
                f"Invalid value at '{name}': a number of at most {MAX_NUMBER_DIGITS} digits."
            )
        return int(text.split(".", 1)[0])
    if kind == "bool" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def coerce_form_values(body: dict[str, Any]) -> dict[str, Any]:
    """Multipart values are all strings: decode JSON-string fields, then numbers and bools."""
    body = dict(body)
    if "metadata" in body:
        body["metadata"] = _json_field(body["metadata"], "{")
    if "images" in body:
        images = _json_field(body["images"], "[")
        body["images"] = images if isinstance(images, list) else [images]
    if "input_reference" in body:
        body["input_reference"] = _json_field(body["input_reference"], "{")
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        metadata = dict(metadata)
        for name in NUMBER_FIELDS:
            if name in metadata:
                metadata[name] = _coerce(metadata[name], "number", f"metadata.{name}")
        for name in BOOL_FIELDS:
            if name in metadata:
                metadata[name] = _coerce(metadata[name], "bool", f"metadata.{name}")
        body["metadata"] = metadata
    return body
