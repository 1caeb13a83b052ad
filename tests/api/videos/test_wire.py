"""Rebuilding the OpenAI SDK's multipart fields, and the gateway translation, in-process."""

from __future__ import annotations

import base64

import pytest

from cinegen.api.videos import translate
from cinegen.api.videos.wire import CreateVideoRequest, coerce_form_values, unflatten_form
from cinegen.core.errors import InvalidArgument
from cinegen.core.rules import RuleError

from .support import RED_PNG, b64

# The parts SDK 3.54 sends for one create with two reference images (spec §1.2): repeated
# keys grouped together, every value a string.
SDK_PARTS = [
    ("prompt", "a cat"),
    ("model", "veo-3.1-generate-preview"),
    ("seconds", "8"),
    ("images[]", "https://example.com/a.png"),
    ("images[]", "data:image/png;base64,AAAA"),
    ("metadata[aspectRatio]", "16:9"),
    ("metadata[durationSeconds]", "8"),
    ("metadata[generateAudio]", "false"),
    ("metadata[referenceImages][][image][bytesBase64Encoded]", "AAA"),
    ("metadata[referenceImages][][image][bytesBase64Encoded]", "BBB"),
    ("metadata[referenceImages][][image][mimeType]", "image/png"),
    ("metadata[referenceImages][][image][mimeType]", "image/jpeg"),
    ("metadata[referenceImages][][referenceType]", "asset"),
    ("metadata[referenceImages][][referenceType]", "asset"),
]


def test_bracket_fields_rebuild_nested_json_by_position() -> None:
    body = coerce_form_values(unflatten_form(SDK_PARTS))
    assert body == {
        "prompt": "a cat",
        "model": "veo-3.1-generate-preview",
        "seconds": "8",
        "images": ["https://example.com/a.png", "data:image/png;base64,AAAA"],
        "metadata": {
            "aspectRatio": "16:9",
            "durationSeconds": 8,
            "generateAudio": False,
            "referenceImages": [
                {
                    "image": {"bytesBase64Encoded": "AAA", "mimeType": "image/png"},
                    "referenceType": "asset",
                },
                {
                    "image": {"bytesBase64Encoded": "BBB", "mimeType": "image/jpeg"},
                    "referenceType": "asset",
                },
            ],
        },
    }


def test_indexed_fields_and_json_string_metadata() -> None:
    indexed = unflatten_form([("a[1][x]", "second"), ("a[0][x]", "first")])
    assert indexed == {"a": [{"x": "first"}, {"x": "second"}]}
    as_json = coerce_form_values({"metadata": '{"durationSeconds": 6, "aspectRatio": "9:16"}'})
    assert as_json["metadata"] == {"durationSeconds": 6, "aspectRatio": "9:16"}


def test_positions_beside_names_stay_names() -> None:
    """`a[0]` beside `a[x]`: a dict with string keys only (ints among them broke the
    idempotency fingerprint's sorted JSON, a 500 schemathesis found)."""
    assert unflatten_form([("m[0]", "a"), ("m[x]", "b")]) == {"m": {"0": "a", "x": "b"}}


@pytest.mark.parametrize("name", ["", "[0]", "[a][b]"])
def test_a_field_name_without_a_name_is_400(name: str) -> None:
    """A part named `""` made the body a list, not an object (a 500, found by schemathesis)."""
    with pytest.raises(InvalidArgument, match="must start with a name"):
        unflatten_form([(name, "v"), ("prompt", "a cat")])


def test_only_numeric_strings_become_numbers() -> None:
    body = coerce_form_values({"metadata": {"durationSeconds": "eight", "seed": "42"}})
    assert body["metadata"] == {"durationSeconds": "eight", "seed": 42}


def test_openai_size_and_seconds_map_onto_veo_parameters() -> None:
    draft = translate.to_draft(
        CreateVideoRequest.model_validate(
            {"model": "veo-3.1-generate-preview", "prompt": "p", "seconds": "4", "size": "720x1280"}
        )
    )
    req = draft.request
    assert (req.duration_seconds, req.aspect_ratio, req.resolution) == (4, "9:16", "720p")
    big = translate.to_draft(
        CreateVideoRequest.model_validate(
            {"model": "m", "prompt": "p", "size": "1920x1080", "metadata": {"aspectRatio": "9:16"}}
        )
    ).request
    assert (big.aspect_ratio, big.resolution) == ("9:16", "1080p")  # metadata wins


def test_images_as_url_base64_and_data_uri() -> None:
    body = CreateVideoRequest.model_validate(
        {
            "model": "m",
            "prompt": "p",
            "images": ["https://example.com/first.png", f"data:image/png;base64,{b64(RED_PNG)}"],
            "metadata": {"referenceImages": [{"image": {"bytesBase64Encoded": b64(RED_PNG)}}]},
        }
    )
    draft = translate.to_draft(body)
    assert [(u.slot, u.url) for u in draft.urls] == [("image", "https://example.com/first.png")]
    assert draft.request.last_frame is not None
    assert draft.request.last_frame.data == RED_PNG
    assert draft.request.last_frame.mime_type == "image/png"
    assert draft.request.reference_images[0].image.data == RED_PNG


@pytest.mark.parametrize(
    "image", ["!!!", "data:image/png;base64,***", "data:image/png,rawtext", "   "]
)
def test_bad_base64_is_the_gateway_error(image: str) -> None:
    body = CreateVideoRequest.model_validate({"model": "m", "prompt": "p", "images": [image]})
    with pytest.raises(RuleError) as info:
        translate.to_draft(body)
    assert info.value.message == "invalid base64"


def test_video_id_is_base64url_of_the_operation_name() -> None:
    name = "models/veo-3.1-generate-preview/operations/0123abcd"
    ident = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
    assert translate.operation_id(ident) == "0123abcd"
    assert translate.operation_id("0123abcd") == "0123abcd"
    assert translate.operation_id("bm90IGFuIG9wZXJhdGlvbg") is None  # "not an operation"
    assert translate.operation_id("%%%") is None
