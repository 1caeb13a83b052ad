"""A field in a place the body's message does not have is refused in Google's words, never
dropped: LiteLLM's extension (`parameters.video`) once came back as a fresh text video.

Google's protobuf JSON parser answers 400 INVALID_ARGUMENT, `Invalid JSON payload received.
Unknown name "video" at 'parameters': Cannot find field.` (no ` at …` for a top-level name),
one sentence a line when several, and a google.rpc.BadRequest detail with one field violation
each. Every name the SDKs send stays accepted, in lowerCamel and as the proto field name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cinegen.api.body import parse_body
from cinegen.api.gemini.translate import to_request
from cinegen.api.gemini.wire import PredictLongRunningRequest
from cinegen.api.vertex.wire import FetchPredictOperationRequest
from cinegen.core.errors import UnknownField
from tests.helpers import b64, png_bytes
from tests.support.app import InProcessServer

GEMINI = "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
VERTEX = "/v1beta1/publishers/google/models/veo-3.1-generate-preview"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
LITELLM_EXTENSION = {
    "instances": [{"prompt": "Continue the scene"}],
    "parameters": {"video": {"uri": "https://example.invalid/v1beta/files/abc123:download"}},
}


def unknown(name: str, at: str = "") -> str:
    where = f" at '{at}'" if at else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'


def _png() -> dict[str, str]:
    return {"bytesBase64Encoded": b64(png_bytes(64, 36)), "mimeType": "image/png"}


@pytest.fixture
def client(fresh_app: InProcessServer) -> Iterator[httpx.Client]:
    with fresh_app.client() as c:
        yield c


def _operations(client: httpx.Client) -> list[Any]:
    response = client.get("/v1beta/operations")
    assert response.status_code == 200, response.text
    return list(response.json().get("operations", []))


def _assert_refused(response: httpx.Response, violations: list[tuple[str, str]]) -> None:
    """400 INVALID_ARGUMENT, the sentences one a line, one field violation per name."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["code"] == 400
    assert error["message"] == "\n".join(sentence for _, sentence in violations)
    expected = [
        {"field": field, "description": sentence} if field else {"description": sentence}
        for field, sentence in violations
    ]
    assert error["details"] == [{"@type": BAD_REQUEST, "fieldViolations": expected}]


def test_litellm_extension_is_refused_and_starts_nothing(client: httpx.Client) -> None:
    response = client.post(GEMINI, json=LITELLM_EXTENSION)
    _assert_refused(response, [("parameters", unknown("video", "parameters"))])
    assert _operations(client) == []


def test_litellm_extension_on_vertex_is_refused_and_starts_nothing(client: httpx.Client) -> None:
    response = client.post(f"{VERTEX}:predictLongRunning", json=LITELLM_EXTENSION)
    _assert_refused(response, [("parameters", unknown("video", "parameters"))])
    assert _operations(client) == []


@pytest.mark.parametrize(
    ("body", "name", "at"),
    [
        ({"instances": [{"prompt": "x"}], "foo": 1}, "foo", ""),
        ({"instances": [{"prompt": "x"}], "parameters": {"image": _png()}}, "image", "parameters"),
        ({"instances": [{"prompt": "x", "firstFrame": _png()}]}, "firstFrame", "instances[0]"),
        (
            {"instances": [{"prompt": "x", "image": {**_png(), "url": "https://x/a.png"}}]},
            "url",
            "instances[0].image",
        ),
        (
            {"instances": [{"prompt": "x", "image": {"inlineData": {"data": "AA", "x": 1}}}]},
            "x",
            "instances[0].image.inline_data",
        ),
        (
            {"instances": [{"prompt": "x", "video": {"url": "https://x/v.mp4"}}]},
            "url",
            "instances[0].video",
        ),
        (
            {"instances": [{"prompt": "x", "referenceImages": [{"image": {"uri": "a"}}]}]},
            "uri",
            "instances[0].reference_images[0].image",
        ),
        (
            {"instances": [{"prompt": "x", "referenceImages": [{"image": _png(), "weight": 1}]}]},
            "weight",
            "instances[0].reference_images[0]",
        ),
        (
            {"instances": [{"prompt": "x", "mask": {**_png(), "mode": "INSERT"}}]},
            "mode",
            "instances[0].mask",
        ),
        (
            {"instances": [{"prompt": "x"}], "webhookConfig": {"uris": [], "secret": "s"}},
            "secret",
            "webhook_config",
        ),
    ],
)
def test_an_unknown_name_anywhere_is_refused_at_its_path(
    client: httpx.Client, body: dict, name: str, at: str
) -> None:
    _assert_refused(client.post(GEMINI, json=body), [(at, unknown(name, at))])
    _assert_refused(
        client.post(f"{VERTEX}:predictLongRunning", json=body), [(at, unknown(name, at))]
    )
    assert _operations(client) == []


def test_every_unknown_name_is_listed(client: httpx.Client) -> None:
    body = {
        "instances": [{"prompt": "x", "image": {**_png(), "colour": "red"}}],
        "parameters": {"video": {"uri": "files/abc"}, "loop": True},
        "model": "veo",
    }
    _assert_refused(
        client.post(GEMINI, json=body),
        [
            ("instances[0].image", unknown("colour", "instances[0].image")),
            ("parameters", unknown("video", "parameters")),
            ("parameters", unknown("loop", "parameters")),
            ("", unknown("model")),
        ],
    )


def test_an_unknown_name_is_the_typed_error() -> None:
    with pytest.raises(UnknownField) as caught:
        parse_body(PredictLongRunningRequest, LITELLM_EXTENSION)
    assert caught.value.violations == (("parameters", unknown("video", "parameters")),)
    assert caught.value.code == 400


def test_fetch_predict_operation_refuses_an_unknown_name(client: httpx.Client) -> None:
    response = client.post(
        f"{VERTEX}:fetchPredictOperation",
        json={"operationName": f"{VERTEX[len('/v1beta1/') :]}/operations/x", "name": "x"},
    )
    _assert_refused(response, [("", unknown("name"))])
    with pytest.raises(UnknownField):
        parse_body(FetchPredictOperationRequest, {"operationName": "n", "name": "x"})


# accepted: lowerCamel and proto names, every placement the SDKs send -----------------------


def _names_request(**spelling: str) -> dict:
    """One body with the names as `spelling` maps them (lowerCamel by default)."""

    def name(camel: str) -> str:
        return spelling.get(camel, camel)

    image = {
        name("bytesBase64Encoded"): _png()["bytesBase64Encoded"],
        name("mimeType"): "image/png",
    }
    return {
        "instances": [
            {
                "prompt": "a red square drifting",
                "image": image,
                name("lastFrame"): image,
            }
        ],
        "parameters": {
            name("sampleCount"): 2,
            name("durationSeconds"): 8,
            name("aspectRatio"): "9:16",
            name("negativePrompt"): "blur",
            name("enhancePrompt"): True,
        },
        name("webhookConfig"): {
            "uris": ["https://example.invalid/hook"],
            name("userMetadata"): {"k": "v"},
        },
    }


SNAKE = {
    "bytesBase64Encoded": "bytes_base64_encoded",
    "mimeType": "mime_type",
    "lastFrame": "last_frame",
    "sampleCount": "sample_count",
    "durationSeconds": "duration_seconds",
    "aspectRatio": "aspect_ratio",
    "negativePrompt": "negative_prompt",
    "enhancePrompt": "enhance_prompt",
    "webhookConfig": "webhook_config",
    "userMetadata": "user_metadata",
}


@pytest.mark.parametrize("spelling", [{}, SNAKE], ids=["lowerCamel", "snake_case"])
def test_camel_and_snake_names_mean_the_same(spelling: dict[str, str]) -> None:
    req = to_request(
        parse_body(PredictLongRunningRequest, _names_request(**spelling)),
        "veo-3.1-generate-preview",
    )
    assert req.image is not None and req.image.data == png_bytes(64, 36)
    assert req.last_frame is not None and req.last_frame.mime_type == "image/png"
    assert (req.sample_count, req.duration_seconds, req.aspect_ratio) == (2, 8, "9:16")
    assert (req.negative_prompt, req.enhance_prompt) == ("blur", True)
    assert req.webhook is not None and req.webhook.user_metadata == {"k": "v"}


@pytest.mark.parametrize("spelling", [{}, SNAKE], ids=["lowerCamel", "snake_case"])
def test_camel_and_snake_names_start_a_job(client: httpx.Client, spelling: dict[str, str]) -> None:
    body = _names_request(**spelling)
    del body[spelling.get("webhookConfig", "webhookConfig")]  # no hook to call here
    response = client.post(GEMINI, json=body)
    assert response.status_code == 200, response.text
    assert len(_operations(client)) == 1


_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
# spec/google-genai-sdk-wire.md: "Every field" as google-genai 3.4.0 sends it in Vertex mode,
# and every Gemini-API field as 2.34.0 (Python: user_metadata) and JS 2.32.0 (userMetadata).
VERTEX_EVERY_FIELD = {
    "instances": [
        {
            "prompt": "Everything set",
            "image": {"bytesBase64Encoded": _PNG, "mimeType": "image/png"},
            "lastFrame": {"bytesBase64Encoded": _PNG, "mimeType": "image/png"},
            "referenceImages": [
                {
                    "image": {"gcsUri": "gs://b/ref.png", "mimeType": "image/png"},
                    "referenceType": "STYLE",
                }
            ],
            "mask": {"bytesBase64Encoded": _PNG, "mimeType": "image/png", "maskMode": "INSERT"},
        }
    ],
    "parameters": {
        "sampleCount": 2,
        "storageUri": "gs://fake-bucket/out/",
        "fps": 24,
        "durationSeconds": 8,
        "seed": 1234,
        "aspectRatio": "16:9",
        "resolution": "1080p",
        "personGeneration": "allow_adult",
        "pubsubTopic": "projects/p/topics/t",
        "negativePrompt": "blurry",
        "enhancePrompt": True,
        "generateAudio": True,
        "compressionQuality": "LOSSLESS",
        "resizeMode": "PAD",
    },
    "labels": {"team": "x"},
}
GEMINI_EVERY_FIELD = {
    "instances": [
        {
            "prompt": "Everything set",
            "image": {"bytesBase64Encoded": _PNG, "mimeType": "image/png"},
            "lastFrame": {"bytesBase64Encoded": _PNG, "mimeType": "image/png"},
            "referenceImages": [
                {
                    "image": {"bytesBase64Encoded": _PNG, "mimeType": "image/png"},
                    "referenceType": "ASSET",
                }
            ],
        }
    ],
    "parameters": {
        "sampleCount": 2,
        "durationSeconds": 8,
        "aspectRatio": "16:9",
        "resolution": "1080p",
        "personGeneration": "allow_adult",
        "negativePrompt": "blurry",
        "enhancePrompt": True,
    },
}
SDK_BODIES = {
    "vertex-every-field": VERTEX_EVERY_FIELD,
    "gemini-python": {
        **GEMINI_EVERY_FIELD,
        "webhookConfig": {"uris": ["https://example.invalid/hook"], "user_metadata": {"k": "v"}},
    },
    "gemini-js": {
        **GEMINI_EVERY_FIELD,
        "webhookConfig": {"uris": ["https://example.invalid/hook"], "userMetadata": {"k": "v"}},
    },
    "gemini-video-uri-and-encoding": {
        "instances": [
            {"prompt": "Continue", "video": {"uri": "files/abc", "encoding": "video/mp4"}}
        ]
    },
    "gemini-video-bytes": {
        "instances": [
            {
                "prompt": "Continue",
                "video": {"encodedVideo": "RkFLRU1QNA==", "encoding": "video/mp4"},
            }
        ]
    },
    "vertex-video-uri-and-bytes": {
        "instances": [
            {
                "prompt": "extend",
                "video": {
                    "gcsUri": "gs://b/v.mp4",
                    "bytesBase64Encoded": "RkFLRQ==",
                    "mimeType": "video/mp4",
                },
            }
        ]
    },
    "pil-image": {"instances": [{"prompt": "Animate this", "image": {}}]},
    "vertex-deprecated-rewriting": {
        "instances": [{"prompt": "x"}],
        "parameters": {"enablePromptRewriting": True},
    },
    "frames-in-parameters": {
        "instances": [{"prompt": "x", "image": {"bytesBase64Encoded": _PNG}}],
        "parameters": {
            "lastFrame": {"bytesBase64Encoded": _PNG},
            "referenceImages": [{"image": {"inlineData": {"mimeType": "image/png", "data": _PNG}}}],
        },
    },
}


@pytest.mark.parametrize("body", list(SDK_BODIES.values()), ids=list(SDK_BODIES))
def test_every_placement_the_sdks_send_is_accepted(body: dict) -> None:
    parsed = parse_body(PredictLongRunningRequest, body)
    assert parsed.instances[0].prompt == body["instances"][0]["prompt"]


def test_the_vertex_sdk_body_keeps_its_values() -> None:
    parsed = parse_body(PredictLongRunningRequest, VERTEX_EVERY_FIELD)
    mask = parsed.instances[0].mask
    assert mask is not None and mask.mask_mode == "INSERT" and mask.bytes_base64_encoded == _PNG
    params = parsed.parameters
    assert params is not None and params.pubsub_topic == "projects/p/topics/t"
    assert (params.fps, params.resize_mode, params.compression_quality) == (24, "PAD", "LOSSLESS")
    assert parsed.labels == {"team": "x"}
