"""The Veo request rules (shared/spec/veo-rules.md §1–§5), with Veo's exact words.

Pure functions over `GenerateRequest` and the catalog's `ModelInfo` rows: no HTTP, no storage,
no media decoding. `check` validates a request against its model's capability row and returns a
copy with every default filled in. Checks that need decoded media (image dimensions, the length
of a video to extend, whether a video uri was issued by this server) are done by the service
with the constants and error builders exported here.

Choices where the spec leaves the words or the order open are marked "Choice:".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace

from cinegen.core.catalog import (
    ASPECT_RATIOS,
    EXTENSION_SECONDS,
    MAX_EXTENSION_INPUT_SECONDS,
    RESOLUTIONS,
    Catalog,
    ModelInfo,
)
from cinegen.core.errors import InvalidArgument
from cinegen.core.request import GenerateRequest, MediaRef, Mode, ReferenceImage

# ---------------------------------------------------------------------------------------------
# Limits and fixed words
# ---------------------------------------------------------------------------------------------

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 4 * 3840 * 2160  # 4x a 4k frame: no output uses more (7680x4320)
MAX_PROMPT_TOKENS = 1024
# Choice: a limit in characters as well as in tokens. The token count is an estimate a text
# can fool (1 MB of `a` is one word, 1 MB of `!` none) and an engine's cost grows with the
# text, not with the estimate. Real tokenizers average about 4 characters of English per
# token, so a prompt within 1024 tokens is about 4 000 characters (and 1 024 CJK characters);
# 8 characters per token leaves room for long words, spaces and punctuation, so no prompt
# within the token limit that Veo accepts is refused for its characters.
MAX_PROMPT_CHARACTERS = 8 * MAX_PROMPT_TOKENS
# Choice: URIs (storageUri, gcsUri, webhook uris): a GCS bucket name is at most 222
# characters and an object name 1024 bytes; 2048 covers both and any sane https URL.
MAX_URI_CHARACTERS = 2048
MAX_MIME_TYPE_CHARACTERS = 255  # RFC 6838: type and subtype at most 127 characters each
MAX_ENUM_CHARACTERS = 64  # resolution, aspectRatio, resizeMode, ...: far above any valid value
# Google Cloud's label rules (e.g. Vertex AI `labels`): at most 64 labels; keys 1-63
# characters, lower-case letters (international ones too), digits, `_` and `-`, beginning with
# a lower-case or international letter; values 0-63 characters of the same set.
MAX_LABELS = 64
MAX_LABEL_CHARACTERS = 63
LABEL_KEY_PATTERN = r"[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}"
LABEL_VALUE_PATTERN = r"[\p{Ll}\p{Lo}\p{N}_-]{0,63}"
# Choice: webhookConfig, whose limits Google does not document (spec/gemini-webhooks.md §5.1).
MAX_WEBHOOK_URIS = 5
WEBHOOK_CONFIG_VERTEX = (
    "webhook_config parameter is only supported in Gemini Developer API mode, "
    "not in Gemini Enterprise Agent Platform mode."
)
MAX_USER_METADATA_BYTES = 16 * 1024
MAX_REFERENCE_IMAGES = 3
MAX_SAMPLE_COUNT = 4
SEED_MAX = 4294967295
EXTENSION_RESOLUTION = "720p"
REQUIRED_DURATION = 8  # extension, referenceImages, interpolation, 1080p, 4k
HD_RESOLUTIONS = ("1080p", "4k")
COMPRESSION_QUALITIES = ("optimized", "lossless")
REFERENCE_TYPES = ("asset", "style")

VIDEO_URI_NOT_FOUND = "Video URI not found in the request."
VIDEO_URI_UNPARSABLE = "Could not parse the file name"

USE_CASE_NOT_SUPPORTED = (
    "Your use case is currently not supported. "
    "Please refer to Gemini API documentation for current model offering."
)

# §3: (text-to-video and extension, image-based modes); the first value is the default.
_PERSON_VEO3 = (("allow_all",), ("allow_adult",))
_PERSON_VEO2 = (("allow_all", "allow_adult", "dont_allow"), ("allow_adult", "dont_allow"))
_PERSON_RESTRICTED_VEO3 = ("allow_adult",)
_PERSON_RESTRICTED_VEO2 = ("dont_allow", "allow_adult")
_TEXT_LIKE_MODES = (Mode.TEXT, Mode.EXTENSION, Mode.EDIT)
_EIGHT_SECOND_MODES = (Mode.EXTENSION, Mode.REFERENCES, Mode.INTERPOLATION)

# Words, plus CJK characters one by one (they are not space-separated).
_TOKEN_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]+")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class RuleError(InvalidArgument):
    """A refusal by the Veo rules, in Veo's words (some with Veo's own code, such as 404)."""


def not_supported(field: str) -> RuleError:
    return RuleError(
        f"`{field}` isn't supported by this model. "
        "Please remove it or refer to the Gemini API documentation for supported usage."
    )


def use_case_not_supported() -> RuleError:
    return RuleError(USE_CASE_NOT_SUPPORTED)


def model_not_found(model: str, api_version: str) -> RuleError:
    model_id = model.removeprefix("models/")
    return RuleError(
        f"models/{model_id} is not found for API version {api_version}, or is not supported "
        "for predictLongRunning. Call ListModels to see the list of available models and "
        "their supported methods.",
        code=404,
        status="NOT_FOUND",
    )


def invalid_string(field: str, value: object) -> RuleError:
    """An enum value Veo does not know at all."""
    return RuleError(f"The string value `{value}` for `{field}` is invalid")


def unsupported_value(field: str, value: object) -> RuleError:
    """A known-shaped value this model (or every model) does not take."""
    return RuleError(
        f"`{field}` does not support `{value}` as a valid value. "
        "Please refer to the Gemini API documentation for supported usage."
    )


def out_of_bound(field: str, low: int, high: int) -> RuleError:
    return RuleError(
        f"The number value for `{field}` is out of bound. "
        f"Please provide a value between {low} and {high}, inclusive."
    )


def wrong_type(field: str, kind: str) -> RuleError:
    return RuleError(f"The value type for `{field}` needs to be a {kind}.")


def resolution_duration_unsupported(resolution: str, duration: int) -> RuleError:
    return RuleError(f"{resolution} is not supported for a duration of {duration} seconds.")


def resolution_aspect_unsupported(resolution: str, aspect_ratio: str) -> RuleError:
    # Choice: the spec gives no words for 1080p + 9:16 on Veo 3.0; this mirrors the duration one.
    return RuleError(f"{resolution} is not supported for an aspect ratio of {aspect_ratio}.")


def person_generation_unsupported(value: str) -> RuleError:
    return RuleError(f"{value} for personGeneration is currently not supported.")


def prompt_required() -> RuleError:
    return RuleError(
        "A prompt is required for text-to-video generation. Please provide `prompt`, "
        "or an `image` or `video` to generate from."
    )


def prompt_too_long(tokens: int) -> RuleError:
    return RuleError(
        f"The prompt is too long (about {tokens} tokens). "
        f"Please provide a prompt of at most {MAX_PROMPT_TOKENS} tokens."
    )


def prompt_too_many_characters(length: int) -> RuleError:
    return RuleError(
        f"The prompt is too long ({length} characters). "
        f"Please provide a prompt of at most {MAX_PROMPT_CHARACTERS} characters."
    )


def value_too_long(field: str, length: int, limit: int, unit: str = "characters") -> RuleError:
    """A free-form string (or list) over its limit; the value itself is never echoed."""
    return RuleError(
        f"The value for `{field}` is too long ({length} {unit}). "
        f"Please provide at most {limit} {unit}."
    )


def negative_prompt_too_long(tokens: int) -> RuleError:
    return RuleError(
        f"The value for `negativePrompt` is too long (about {tokens} tokens). "
        f"Please provide at most {MAX_PROMPT_TOKENS} tokens."
    )


def too_many_labels(count: int) -> RuleError:
    return RuleError(
        f"The request has {count} labels. "
        f"No more than {MAX_LABELS} labels can be associated with a given resource."
    )


def _shown(value: str) -> str:
    return value if len(value) <= MAX_LABEL_CHARACTERS else value[:MAX_LABEL_CHARACTERS] + "…"


def invalid_label_key(key: str) -> RuleError:
    return RuleError(
        f"Invalid label key `{_shown(key)}`. Label keys must be between 1 and "
        f"{MAX_LABEL_CHARACTERS} characters long and must conform to the regular expression: "
        f"{LABEL_KEY_PATTERN}."
    )


def invalid_label_value(key: str, value: str) -> RuleError:
    return RuleError(
        f"Invalid value for label `{_shown(key)}`. Label values must be between 0 and "
        f"{MAX_LABEL_CHARACTERS} characters long and must conform to the regular expression: "
        f"{LABEL_VALUE_PATTERN}."
    )


def too_many_reference_images(limit: int) -> RuleError:
    # Choice: Veo's own words are unknown (the /v1/videos gateway says `too many reference
    # images`); phrased like the other bound messages.
    return RuleError(
        f"The number of `referenceImages` is out of bound. "
        f"Please provide between 1 and {limit} reference images."
    )


def empty_media(field: str) -> RuleError:
    """An input object with no bytes, e.g. `"image": {}` (the Python SDK given a PIL image)."""
    if field == "video":
        return RuleError(
            "`video` has no data. Pass a video this server generated (its `uri`), or the video "
            "bytes as `types.Video(video_bytes=..., mime_type='video/mp4')`."
        )
    return RuleError(
        f"`{field}` has no image bytes (the request carried an empty image object). The "
        "google-genai Python SDK sends an empty image when it is given a PIL image: pass "
        "`types.Image(image_bytes=..., mime_type=...)` or "
        "`types.Image.from_file(location=...)` instead of a PIL image."
    )


def image_too_large(size: int) -> RuleError:
    mib = size / (1024 * 1024)
    return RuleError(
        f"The image is too large ({mib:.1f} MB decoded). "
        f"Please provide an image of at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB."
    )


def extension_input_invalid(reason: str) -> RuleError:
    return RuleError(
        f"The input video cannot be extended: {reason}. The video to extend must be 720p, "
        f"16:9 or 9:16, and at most {MAX_EXTENSION_INPUT_SECONDS} seconds long."
    )


def edit_input_invalid(reason: str, shortest: int, longest: int) -> RuleError:
    """A masked edit's input video refused. Vertex documents no bounds of its own for an
    edit's input: Choice: the extension's bounds in the request's dialect (`extension_bounds`),
    in words that say edit, since no extension was asked for."""
    length = f"{shortest} to {longest}" if shortest else f"at most {longest}"
    return RuleError(
        f"The input video cannot be edited: {reason}. The video to edit must be 720p, "
        f"16:9 or 9:16, and {length} seconds long."
    )


# Vertex's extension: "You can use Veo on Vertex AI to extend videos that you previously
# generated using Veo that are 1 to 30 seconds in length" and each extension adds 7 s, so the
# extended video is at most 37 s (https://docs.cloud.google.com/vertex-ai/generative-ai/docs/
# video/extend-a-veo-video). Vertex publishes no error text for it: Choice: the sentence below,
# in the style of `extension_input_invalid`, with Vertex's own bounds. The Gemini API's chain
# (MAX_EXTENSION_INPUT_SECONDS) stays for the other dialects.
VERTEX_MIN_EXTENSION_INPUT_SECONDS = 1
VERTEX_MAX_EXTENSION_INPUT_SECONDS = 30
VERTEX_MAX_EXTENDED_SECONDS = VERTEX_MAX_EXTENSION_INPUT_SECONDS + EXTENSION_SECONDS  # 37


def vertex_extension_input_invalid(reason: str) -> RuleError:
    return RuleError(
        f"The input video cannot be extended: {reason}. Veo on Vertex AI extends videos that "
        f"are {VERTEX_MIN_EXTENSION_INPUT_SECONDS} to {VERTEX_MAX_EXTENSION_INPUT_SECONDS} "
        "seconds in length, 720p, 16:9 or 9:16; the extended video is at most "
        f"{VERTEX_MAX_EXTENDED_SECONDS} seconds long."
    )


def extension_bounds(dialect: str) -> tuple[int, int, Callable[[str], RuleError]]:
    """(shortest, longest input in seconds, the refusal) for an extension in `dialect`."""
    if dialect == "vertex":
        return (
            VERTEX_MIN_EXTENSION_INPUT_SECONDS,
            VERTEX_MAX_EXTENSION_INPUT_SECONDS,
            vertex_extension_input_invalid,
        )
    return 0, MAX_EXTENSION_INPUT_SECONDS, extension_input_invalid


# resizeMode (Vertex: Veo 3 models, with `image` for image-to-video; the SDKs send `PAD`/`CROP`):
# `pad` keeps the whole image and fills the rest of the frame with black, `crop` centre-crops
# it to fill the frame. Vertex's default is `pad` (https://cloud.google.com/vertex-ai/
# generative-ai/docs/model-reference/veo-video-generation, "pad (default)"); the Gemini API
# documents no resizeMode, so its requests keep cinegen's crop unless they name a mode.
RESIZE_MODES = ("pad", "crop")
VERTEX_DEFAULT_RESIZE_MODE = "pad"


# Masked editing (Vertex `instances[0].mask`, Preview). Sources:
# - https://docs.cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/Shared.Types/
#   VideoGenerationModelInstance: `video` "If mask is also provided, the input video will be
#   edited based on the mask. If mask is not provided, the input video will be extended";
#   `image` and `referenceImages` cannot be used with `video`.
# - google-genai's VideoGenerationMaskMode (js-genai release docs, types.VideoGenerationMaskMode):
#   INSERT "a masked rectangular region which is applied on the first frame of the input
#   video. The object described in the prompt is inserted into this region"; REMOVE "used to
#   determine an object in the first video frame to track. This object is removed"; REMOVE_STATIC
#   "used to determine a region in the video. Objects in this region will be removed";
#   OUTPAINT "a masked rectangular region where the input video will go. The remaining area
#   will be generated". The mask is an image (image/png or image/jpeg); white marks the region.
# - Models: Google's model pages list "Insert objects into videos" and "Remove objects from
#   videos" (Preview) for veo-2.0-generate-exp and veo-2.0-generate-preview only
#   (https://cloud.google.com/vertex-ai/generative-ai/docs/models/veo/2-0-generate-exp and
#   .../video/insert-objects-into-videos, .../video/remove-objects-from-videos); no Veo 3 page
#   lists them. Choice: outpainting on the same models (its page names no other).
# - The edited video has the input's length and size (an edit, not an extension): Choice, as
#   Vertex documents no duration for it; `durationSeconds` is not used.
# Vertex publishes no error text for masks: Choice: the rules' usual sentences below.
MASK_MODES = ("INSERT", "REMOVE", "REMOVE_STATIC", "OUTPAINT")
MASK_MODELS = frozenset({"veo-2.0-generate-exp", "veo-2.0-generate-preview"})


def mask_needs_video() -> RuleError:
    return RuleError(
        "`mask` needs an input `video`: a mask edits a video (insert, remove or outpaint "
        "objects). Please provide `video`, or remove `mask`."
    )


def mask_mode_required() -> RuleError:
    return RuleError(
        f"`mask.maskMode` is required with `mask`. Please provide one of {', '.join(MASK_MODES)}."
    )


def insert_prompt_required() -> RuleError:
    return RuleError(
        "A prompt is required to insert an object into a video. Please provide `prompt` "
        "describing the object to insert."
    )


# cameraControl (Vertex only): "Camera motion to use in generated videos. An input image must
# also be provided." (https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/
# Shared.Types/VideoGenerationModelInstance, which lists the values below and names no model).
# Vertex's "Veo camera controls" page offered it as a Veo 2 image-to-video feature; that page
# (and its model list) was not available here. Choice: accepted on the Veo 2 rows only, with
# an image and no lastFrame (image to video); other models get "`cameraControl` isn't
# supported by this model. ...", first + last frame the "use case" sentence. The Gemini API's
# instance has no such field: its dialect refuses the name as unknown (api/gemini/translate.py).
# The google-genai SDK (3.4.0) has no field for it either: only REST callers send it.
CAMERA_CONTROLS = (
    "fixed",
    "pan_left",
    "pan_right",
    "tilt_up",
    "tilt_down",
    "truck_left",
    "truck_right",
    "pedestal_up",
    "pedestal_down",
    "push_in",
    "pull_out",
)


def camera_control_needs_image() -> RuleError:
    # Choice: Vertex's words are unknown; its reference's sentence, in the rules' style.
    return RuleError(
        "`cameraControl` requires an input image. Please provide `image`, or remove "
        "`cameraControl`."
    )


def video_uri_not_found() -> RuleError:
    return RuleError(VIDEO_URI_NOT_FOUND)


def video_uri_unparsable() -> RuleError:
    return RuleError(VIDEO_URI_UNPARSABLE)


# ---------------------------------------------------------------------------------------------
# Models and wire types
# ---------------------------------------------------------------------------------------------


def resolve_model(model: str, api_version: str, catalog: Catalog | None = None) -> ModelInfo:
    """The row for `model` (`veo-…` or `models/veo-…`, or an alias) in `catalog` (by default
    Veo's own models)."""
    info = (catalog or Catalog()).get(model)
    if info is None:
        raise model_not_found(model.strip(), api_version)
    return info


def as_number(field: str, value: object) -> int:
    """A JSON number with an integral value (`8` or `8.0`); bools and strings are refused."""
    if isinstance(value, bool):
        raise wrong_type(field, "number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise wrong_type(field, "number")


def as_string(field: str, value: object) -> str:
    if isinstance(value, str):
        return value
    raise wrong_type(field, "string")


def as_bool(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise wrong_type(field, "boolean")


def count_tokens(text: str) -> int:
    """Approximate tokens: words split on whitespace/punctuation, each CJK character one.

    Choice: this undercounts a real tokenizer a little, so no prompt Veo accepts is refused.
    """
    return len(_TOKEN_RE.findall(text))


def max_sample_count(info: ModelInfo, dialect: str) -> int:
    return info.max_samples_gemini if dialect == "gemini" else MAX_SAMPLE_COUNT


def person_generation_options(
    info: ModelInfo, mode: Mode, restricted_region: bool = False
) -> tuple[str, ...]:
    """The accepted personGeneration values (§3); the first is the default.

    Choice: models outside the Veo 2 family (Veo 3.x and the server's own open-weight rows)
    follow the Veo 3.x row.
    """
    if restricted_region:
        return _PERSON_RESTRICTED_VEO2 if info.is_veo2 else _PERSON_RESTRICTED_VEO3
    text_row, image_row = _PERSON_VEO2 if info.is_veo2 else _PERSON_VEO3
    return text_row if mode in _TEXT_LIKE_MODES else image_row


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def _check_media(req: GenerateRequest) -> None:
    named: list[tuple[str, MediaRef | None]] = [
        ("image", req.image),
        ("lastFrame", req.last_frame),
        ("video", req.video),
        ("mask", req.mask),
    ]
    named += [("referenceImages.image", ref.image) for ref in req.reference_images]
    for field, media in named:
        if media is None:
            continue
        if media.is_empty:
            raise empty_media(field)
        if field != "video" and media.data is not None and len(media.data) > MAX_IMAGE_BYTES:
            raise image_too_large(len(media.data))


def _check_mask(info: ModelInfo, req: GenerateRequest, prompt: str | None) -> str | None:
    """A mask edits a video: it needs one, on a model that edits, in one of Vertex's modes;
    the mode upper-cased (the SDKs send `INSERT`, Vertex's REST samples `insert`)."""
    if req.mask is None:
        return None
    if req.video is None:
        raise mask_needs_video()
    # Choice: a native row of an open-weight engine edits when its engine says it does.
    takes_mask = info.id in MASK_MODELS or info.family == "open"
    if req.dialect == "gemini" or not takes_mask:
        raise not_supported("mask")
    if not info.mask_edit:
        # A row the diffusers engine serves with no `edit` pipeline (Wan VACE) in its
        # registry refuses the mask here rather than failing the job later.
        raise not_supported("mask")
    if req.mask_mode is None or not req.mask_mode.strip():
        raise mask_mode_required()
    mode = req.mask_mode.strip().upper()
    if mode not in MASK_MODES:
        raise invalid_string("maskMode", req.mask_mode)
    if mode == "INSERT" and prompt is None:
        raise insert_prompt_required()
    return mode


def _normalise_prompt(prompt: str | None) -> str | None:
    if prompt is None:
        return None
    stripped = prompt.strip()
    return stripped or None


def _check_prompt(prompt: str | None, mode: Mode) -> None:
    # Choice: only text-to-video needs a prompt; reference images count as an image input
    # ("optional when an image or a video is given").
    if prompt is None:
        if mode is Mode.TEXT:
            raise prompt_required()
        return
    if len(prompt) > MAX_PROMPT_CHARACTERS:
        raise prompt_too_many_characters(len(prompt))
    tokens = count_tokens(prompt)
    if tokens > MAX_PROMPT_TOKENS:
        raise prompt_too_long(tokens)


def _check_length(field: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise value_too_long(field, len(value), limit)


def _check_negative_prompt(value: str | None) -> None:
    if value is None:
        return
    _check_length("negativePrompt", value, MAX_PROMPT_CHARACTERS)
    tokens = count_tokens(value)
    if tokens > MAX_PROMPT_TOKENS:
        raise negative_prompt_too_long(tokens)


def _label_char(char: str) -> bool:
    return char in "_-" or unicodedata.category(char) in ("Ll", "Lo", "Nd", "Nl", "No")


def _check_labels(labels: dict[str, str]) -> None:
    """Google Cloud's label rules: at most 64; keys and values of at most 63 characters."""
    if len(labels) > MAX_LABELS:
        raise too_many_labels(len(labels))
    for key, value in labels.items():
        if (
            not isinstance(key, str)
            or not 1 <= len(key) <= MAX_LABEL_CHARACTERS
            or unicodedata.category(key[0]) not in ("Ll", "Lo")
            or not all(_label_char(c) for c in key)
        ):
            raise invalid_label_key(str(key))
        if (
            not isinstance(value, str)
            or len(value) > MAX_LABEL_CHARACTERS
            or not all(_label_char(c) for c in value)
        ):
            raise invalid_label_value(key, str(value))


def _check_free_strings(req: GenerateRequest) -> None:
    """Every other string a request carries, bounded in characters before it is stored."""
    _check_negative_prompt(req.negative_prompt)
    _check_length("storageUri", req.storage_uri, MAX_URI_CHARACTERS)
    for field, value in (
        ("aspectRatio", req.aspect_ratio),
        ("resolution", req.resolution),
        ("personGeneration", req.person_generation),
        ("compressionQuality", req.compression_quality),
        ("resizeMode", req.resize_mode),
        ("cameraControl", req.camera_control),
    ):
        _check_length(field, value, MAX_ENUM_CHARACTERS)
    for name, media in req.media().items():
        _check_length(f"{name}.gcsUri", media.gcs_uri, MAX_URI_CHARACTERS)
        _check_length(f"{name}.mimeType", media.mime_type, MAX_MIME_TYPE_CHARACTERS)
    for ref in req.reference_images:
        _check_length("referenceType", ref.reference_type, MAX_ENUM_CHARACTERS)
    _check_labels(req.labels)
    if req.webhook is not None:
        if req.dialect == "vertex":  # the SDK's own refusal in Vertex mode (spec webhooks §5.1)
            raise InvalidArgument(WEBHOOK_CONFIG_VERTEX)
        uris = req.webhook.uris
        if len(uris) > MAX_WEBHOOK_URIS:
            raise value_too_long("webhookConfig.uris", len(uris), MAX_WEBHOOK_URIS, "uris")
        for uri in uris:
            _check_length("webhookConfig.uris", uri, MAX_URI_CHARACTERS)
        metadata = json.dumps(req.webhook.user_metadata, ensure_ascii=False)
        size = len(metadata.encode("utf-8", "surrogatepass"))
        if size > MAX_USER_METADATA_BYTES:
            raise value_too_long(
                "webhookConfig.userMetadata", size, MAX_USER_METADATA_BYTES, "bytes"
            )


def _check_aspect_ratio(value: str | None) -> str:
    if value is None:
        return ASPECT_RATIOS[0]
    if value not in ASPECT_RATIOS:
        raise unsupported_value("aspectRatio", value)
    return value


def _check_resolution(info: ModelInfo, value: str | None) -> str:
    if value is None:
        return info.resolutions[0]
    if not info.resolution_param:
        raise not_supported("resolution")
    lowered = value.strip().lower()
    if lowered not in RESOLUTIONS:
        raise invalid_string("resolution", value)
    if lowered not in info.resolutions:
        # Choice: a known resolution this model lacks (4k on Veo 3.0 and on Veo 3.1 Lite) gets
        # the same words Veo uses for an aspectRatio it does not take.
        raise unsupported_value("resolution", lowered)
    return lowered


def _check_duration(info: ModelInfo, value: int | None) -> int:
    if value is None:
        return info.default_duration
    if value not in info.durations:
        raise out_of_bound("durationSeconds", min(info.durations), max(info.durations))
    return value


def _check_references(info: ModelInfo, req: GenerateRequest) -> tuple[ReferenceImage, ...]:
    refs = req.reference_images
    if not refs:
        return refs
    if info.max_references_asset == 0 and not info.style_reference:
        raise not_supported("referenceImages")
    if req.image is not None:
        raise not_supported("referenceImages")
    if len(refs) > MAX_REFERENCE_IMAGES:
        raise too_many_reference_images(MAX_REFERENCE_IMAGES)
    normalised = []
    for ref in refs:
        kind = ref.reference_type.strip().lower()
        if kind not in REFERENCE_TYPES:
            raise invalid_string("referenceType", ref.reference_type)
        normalised.append(replace(ref, reference_type=kind))
    styles = sum(1 for ref in normalised if ref.reference_type == "style")
    if styles:
        # Choice: style on a model without style references, or a style image mixed with
        # others, is a combination Veo refuses with its "use case" sentence.
        if not info.style_reference or len(normalised) != 1:
            raise use_case_not_supported()
    elif len(normalised) > info.max_references_asset:
        raise too_many_reference_images(info.max_references_asset)
    return tuple(normalised)


def _check_inputs(info: ModelInfo, req: GenerateRequest) -> tuple[ReferenceImage, ...]:
    if req.video is not None:
        if not info.extension and req.mask is None:  # an edit: `_check_mask` checked it
            raise not_supported("video")
        # Choice: an extension takes the video and a prompt only.
        if req.image is not None or req.last_frame is not None or req.reference_images:
            raise use_case_not_supported()
    if req.last_frame is not None and req.image is None:
        raise use_case_not_supported()
    return _check_references(info, req)


def _check_person_generation(
    info: ModelInfo, mode: Mode, value: str | None, restricted_region: bool
) -> str:
    options = person_generation_options(info, mode, restricted_region)
    if value is None:
        return options[0]
    lowered = value.strip().lower()
    if lowered not in options:
        raise person_generation_unsupported(value)
    return lowered


def _check_seed(value: int | None) -> None:
    if value is not None and not 0 <= value <= SEED_MAX:
        raise out_of_bound("seed", 0, SEED_MAX)


def _check_sample_count(info: ModelInfo, value: int | None, dialect: str) -> int:
    if value is None:
        return 1
    high = max_sample_count(info, dialect)
    if not 1 <= value <= high:
        raise out_of_bound("sampleCount", 1, high)
    return value


def _check_audio(info: ModelInfo, value: bool | None) -> bool:
    # Choice: a model that always has audio keeps what the client asked (Vertex honours
    # generateAudio); absent means the model's default.
    if value is None:
        return info.audio_default()
    if info.audio == "never":
        raise not_supported("generateAudio")
    return value


def _check_compression(value: str | None) -> str | None:
    # Choice: left None when absent (the engine's default is `optimized`), like enhancePrompt.
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered not in COMPRESSION_QUALITIES:
        raise invalid_string("compressionQuality", value)
    return lowered


def _check_resize_mode(req: GenerateRequest) -> str | None:
    """`pad` or `crop` (any case); absent: Vertex's `pad` when a frame image is given, else
    None (the crop every other dialect has always had)."""
    if req.resize_mode is None:
        framed = req.image is not None or req.last_frame is not None
        return VERTEX_DEFAULT_RESIZE_MODE if req.dialect == "vertex" and framed else None
    lowered = req.resize_mode.strip().lower()
    if lowered not in RESIZE_MODES:
        raise invalid_string("resizeMode", req.resize_mode)
    return lowered


def _check_camera_control(info: ModelInfo, req: GenerateRequest) -> str | None:
    """One of CAMERA_CONTROLS (any case), on a model that takes it, over an image only."""
    if req.camera_control is None:
        return None
    if not info.is_veo2:
        raise not_supported("cameraControl")
    if req.image is None:
        raise camera_control_needs_image()
    if req.mode is not Mode.IMAGE:
        raise use_case_not_supported()
    lowered = req.camera_control.strip().lower()
    if lowered not in CAMERA_CONTROLS:
        raise invalid_string("cameraControl", req.camera_control)
    return lowered


def _check_combinations(
    info: ModelInfo, req: GenerateRequest, resolution: str, duration: int, aspect: str
) -> None:
    """Rules between fields: the 8 s requirements, 1080p landscape, extension at 720p."""
    if resolution in HD_RESOLUTIONS and duration != REQUIRED_DURATION:
        raise resolution_duration_unsupported(resolution, duration)
    if resolution == "1080p" and info.hd_landscape_only and aspect != "16:9":
        raise resolution_aspect_unsupported(resolution, aspect)
    mode = req.mode
    if mode is Mode.EXTENSION and resolution != EXTENSION_RESOLUTION:
        # Choice: Veo's words for extending at 1080p/4k are unknown; its "use case" sentence.
        raise use_case_not_supported()
    if mode in _EIGHT_SECOND_MODES and duration != REQUIRED_DURATION:
        raise use_case_not_supported()
    if mode is Mode.REFERENCES and aspect != "16:9":
        # Choice: references are 16:9 only; 9:16 is a valid ratio, so the "use case" sentence.
        raise use_case_not_supported()


def check(
    req: GenerateRequest,
    *,
    api_version: str = "v1beta",
    restricted_region: bool = False,
    catalog: Catalog | None = None,
) -> GenerateRequest:
    """Validate `req` against its model's row; return a copy with every default filled in.

    Raises `RuleError` with Veo's words. Order: model, media, prompt, the lengths of every
    other string (negativePrompt, uris, labels: Google Cloud's rules), inputs, then the
    parameters one by one, then the rules between fields.
    """
    info = resolve_model(req.model, api_version, catalog)
    _check_media(req)
    prompt = _normalise_prompt(req.prompt)
    mask_mode = _check_mask(info, req, prompt)
    _check_prompt(prompt, req.mode)
    _check_free_strings(req)
    references = _check_inputs(info, req)
    aspect = _check_aspect_ratio(req.aspect_ratio)
    resolution = _check_resolution(info, req.resolution)
    duration = _check_duration(info, req.duration_seconds)
    person = _check_person_generation(info, req.mode, req.person_generation, restricted_region)
    _check_seed(req.seed)
    samples = _check_sample_count(info, req.sample_count, req.dialect)
    if req.enhance_prompt is not None and not info.enhance_prompt:
        raise not_supported("enhancePrompt")
    audio = _check_audio(info, req.generate_audio)
    compression = _check_compression(req.compression_quality)
    camera_control = _check_camera_control(info, req)
    _check_combinations(info, req, resolution, duration, aspect)
    return req.with_(
        model=info.id,
        prompt=prompt,
        reference_images=references,
        aspect_ratio=aspect,
        resolution=resolution,
        duration_seconds=duration,
        person_generation=person,
        sample_count=samples,
        generate_audio=audio,
        compression_quality=compression,
        camera_control=camera_control,
        mask_mode=mask_mode,
        resize_mode=_check_resize_mode(req),
    )
