"""cinegen.core.rules against shared/spec/veo-rules.md, model by model, both sides of each rule.

The expected capabilities are written out from the spec here (not read from the catalog), so a
wrong catalog row fails these tests too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cinegen.core import rules
from cinegen.core.catalog import MODELS
from cinegen.core.request import GenerateRequest, MediaRef, Mode, ReferenceImage
from cinegen.core.rules import RuleError, check


@dataclass(frozen=True)
class Spec:
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    assets: int  # max asset references
    style: bool
    extension: bool
    enhance: bool
    veo2: bool
    max_gemini: int
    audio: bool


_V31 = Spec((4, 6, 8), ("720p", "1080p", "4k"), 3, False, True, True, False, 4, True)
_V31F = Spec((4, 6, 8), ("720p", "1080p", "4k"), 0, False, True, True, False, 4, True)
_V31L = Spec((4, 6, 8), ("720p", "1080p"), 0, False, False, True, False, 4, True)  # Lite: no 4k
_V30 = Spec((4, 6, 8), ("720p", "1080p"), 0, False, False, True, False, 4, True)
_V30_001 = Spec((4, 6, 8), ("720p", "1080p"), 0, False, False, False, False, 4, True)
_V2 = Spec((5, 6, 7, 8), ("720p",), 0, False, False, True, True, 2, False)
_V2X = Spec((5, 6, 7, 8), ("720p",), 3, True, False, True, True, 2, False)

SPEC: dict[str, Spec] = {
    "veo-3.1-generate-preview": _V31,
    "veo-3.1-fast-generate-preview": _V31F,
    "veo-3.1-lite-generate-preview": _V31L,
    "veo-3.1-generate-001": _V31,
    "veo-3.1-fast-generate-001": _V31F,
    "veo-3.1-lite-generate-001": _V31L,
    "veo-3.0-generate-001": _V30_001,
    "veo-3.0-generate-preview": _V30,
    "veo-3.0-fast-generate-001": _V30_001,
    "veo-3.0-fast-generate-preview": _V30,
    "veo-2.0-generate-001": _V2,
    "veo-2.0-generate-exp": _V2X,
    "veo-2.0-generate-preview": _V2X,
}
ALL = sorted(SPEC)
VEO2 = [m for m in ALL if SPEC[m].veo2]
VEO3 = [m for m in ALL if not SPEC[m].veo2]
VEO30 = [m for m in ALL if m.startswith("veo-3.0")]
VEO31 = [m for m in ALL if m.startswith("veo-3.1")]

IMG = MediaRef(data=b"\x89PNG fake", mime_type="image/png")
IMG2 = MediaRef(data=b"\xff\xd8 fake", mime_type="image/jpeg")
VID = MediaRef(file_id="abc123")
ASSET = ReferenceImage(IMG, "asset")
STYLE = ReferenceImage(IMG, "style")

NOT_SUPPORTED = (
    "`{}` isn't supported by this model. "
    "Please remove it or refer to the Gemini API documentation for supported usage."
)
USE_CASE = (
    "Your use case is currently not supported. "
    "Please refer to Gemini API documentation for current model offering."
)
ASPECT = (
    "`aspectRatio` does not support `{}` as a valid value. "
    "Please refer to the Gemini API documentation for supported usage."
)
BOUND = (
    "The number value for `{}` is out of bound. "
    "Please provide a value between {} and {}, inclusive."
)


def make(model: str, **kw: object) -> GenerateRequest:
    kw.setdefault("prompt", "a cat on a skateboard")
    return GenerateRequest(model=model, **kw)  # type: ignore[arg-type]


def refused(req: GenerateRequest, message: str, code: int = 400, **kw: object) -> RuleError:
    with pytest.raises(RuleError) as info:
        check(req, **kw)  # type: ignore[arg-type]
    err = info.value
    assert err.message == message
    assert str(err) == message
    assert err.code == code
    assert err.status == ("INVALID_ARGUMENT" if code == 400 else "NOT_FOUND")
    return err


def refs(n: int, kind: str = "asset") -> tuple[ReferenceImage, ...]:
    return tuple(ReferenceImage(IMG, kind) for _ in range(n))


def models_where(pred) -> list[str]:  # type: ignore[no-untyped-def]
    return [m for m in ALL if pred(SPEC[m])]


# --------------------------------------------------------------------------------- errors, §1


def test_catalog_holds_every_spec_model() -> None:
    assert set(SPEC) == set(MODELS)


def test_rule_error_defaults() -> None:
    err = RuleError("boom")
    assert (err.message, err.code, err.status) == ("boom", 400, "INVALID_ARGUMENT")
    err = RuleError("gone", 404, "NOT_FOUND")
    assert (err.message, err.code, err.status) == ("gone", 404, "NOT_FOUND")
    assert isinstance(err, Exception)


def test_standard_sentences() -> None:
    assert rules.not_supported("seed").message == NOT_SUPPORTED.format("seed")
    assert rules.use_case_not_supported().message == USE_CASE
    assert rules.use_case_not_supported().code == 400


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("prefix", ["", "models/"])
def test_resolve_model_known(model: str, prefix: str) -> None:
    assert rules.resolve_model(prefix + model, "v1beta").id == model


@pytest.mark.parametrize("model", ["veo-9", "models/veo-9", "veo-3.1-generate", "gemini-2.5-pro"])
@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_unknown_model_404(model: str, version: str) -> None:
    bare = model.removeprefix("models/")
    message = (
        f"models/{bare} is not found for API version {version}, or is not supported for "
        "predictLongRunning. Call ListModels to see the list of available models and their "
        "supported methods."
    )
    with pytest.raises(RuleError) as info:
        rules.resolve_model(model, version)
    assert (info.value.message, info.value.code, info.value.status) == (message, 404, "NOT_FOUND")
    refused(make(model), message, code=404, api_version=version)


def test_check_canonicalises_model_id() -> None:
    assert check(make("models/veo-3.1-generate-preview")).model == "veo-3.1-generate-preview"


# ----------------------------------------------------------------------------- wire types


@pytest.mark.parametrize(
    ("value", "expected"), [(8, 8), (8.0, 8), (0, 0), (-3, -3), (2**40, 2**40)]
)
def test_as_number_accepts(value: object, expected: int) -> None:
    result = rules.as_number("durationSeconds", value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [True, False, "8", 8.5, None, [8], {"v": 8}])
@pytest.mark.parametrize("field", ["durationSeconds", "seed", "sampleCount"])
def test_as_number_refuses(field: str, value: object) -> None:
    with pytest.raises(RuleError) as info:
        rules.as_number(field, value)
    assert info.value.message == f"The value type for `{field}` needs to be a number."
    assert info.value.code == 400


def test_as_string() -> None:
    assert rules.as_string("aspectRatio", "16:9") == "16:9"
    for value in (16, None, True, ["16:9"]):
        with pytest.raises(RuleError) as info:
            rules.as_string("aspectRatio", value)
        assert info.value.message == "The value type for `aspectRatio` needs to be a string."


def test_as_bool() -> None:
    assert rules.as_bool("enhancePrompt", True) is True
    assert rules.as_bool("enhancePrompt", False) is False
    for value in (1, 0, "true", None):
        with pytest.raises(RuleError) as info:
            rules.as_bool("enhancePrompt", value)
        assert info.value.message == "The value type for `enhancePrompt` needs to be a boolean."


# ------------------------------------------------------------------------------- defaults


@pytest.mark.parametrize("model", ALL)
def test_defaults_filled_in(model: str) -> None:
    out = check(make(model, prompt="  a cat  "))
    assert out.model == model
    assert out.prompt == "a cat"
    assert out.aspect_ratio == "16:9"
    assert out.resolution == "720p"
    assert out.duration_seconds == 8
    assert out.person_generation == "allow_all"
    assert out.sample_count == 1
    assert out.generate_audio is SPEC[model].audio
    assert out.enhance_prompt is None
    assert out.seed is None
    assert out.compression_quality is None


@pytest.mark.parametrize("model", ALL)
def test_given_values_kept(model: str) -> None:
    spec = SPEC[model]
    req = make(
        model,
        aspect_ratio="9:16",
        duration_seconds=spec.durations[0],
        seed=42,
        sample_count=2,
        negative_prompt="blurry",
        enhance_prompt=True if spec.enhance else None,
    )
    out = check(req)
    assert out.aspect_ratio == "9:16"
    assert out.duration_seconds == spec.durations[0]
    assert out.seed == 42
    assert out.sample_count == 2
    assert out.negative_prompt == "blurry"
    assert out.enhance_prompt is (True if spec.enhance else None)


def test_check_does_not_mutate_input() -> None:
    req = make("veo-3.1-generate-preview")
    check(req)
    assert req.aspect_ratio is None and req.duration_seconds is None


# ---------------------------------------------------------------------------- aspectRatio


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("ratio", ["16:9", "9:16"])
def test_aspect_ratio_accepted(model: str, ratio: str) -> None:
    assert check(make(model, aspect_ratio=ratio)).aspect_ratio == ratio


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("ratio", ["4:3", "1:1", "21:9", "16/9", ""])
def test_aspect_ratio_refused(model: str, ratio: str) -> None:
    refused(make(model, aspect_ratio=ratio), ASPECT.format(ratio))


# ----------------------------------------------------------------------------- resolution


@pytest.mark.parametrize("model", VEO2)
@pytest.mark.parametrize("value", ["720p", "1080p", "4k", "nonsense"])
def test_veo2_refuses_resolution_field(model: str, value: str) -> None:
    refused(make(model, resolution=value), NOT_SUPPORTED.format("resolution"))


@pytest.mark.parametrize(("model", "value"), [(m, r) for m in VEO3 for r in SPEC[m].resolutions])
@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_resolution_accepted(model: str, value: str, case) -> None:  # type: ignore[no-untyped-def]
    assert check(make(model, resolution=case(value))).resolution == value


@pytest.mark.parametrize("model", VEO3)
@pytest.mark.parametrize("value", ["480p", "8k", "2160p", "hd", "720"])
def test_resolution_unknown(model: str, value: str) -> None:
    refused(
        make(model, resolution=value), f"The string value `{value}` for `resolution` is invalid"
    )


@pytest.mark.parametrize(
    ("model", "value"),
    [(m, r) for m in VEO3 for r in ("720p", "1080p", "4k") if r not in SPEC[m].resolutions],
)
def test_resolution_not_offered_by_model(model: str, value: str) -> None:
    message = (
        f"`resolution` does not support `{value}` as a valid value. "
        "Please refer to the Gemini API documentation for supported usage."
    )
    refused(make(model, resolution=value.upper()), message)


HD = [(m, r) for m in VEO3 for r in SPEC[m].resolutions if r != "720p"]


@pytest.mark.parametrize(("model", "value"), HD)
@pytest.mark.parametrize("duration", [4, 6])
def test_hd_needs_8_seconds(model: str, value: str, duration: int) -> None:
    message = f"{value} is not supported for a duration of {duration} seconds."
    refused(make(model, resolution=value, duration_seconds=duration), message)


@pytest.mark.parametrize(("model", "value"), HD)
def test_hd_with_8_seconds(model: str, value: str) -> None:
    out = check(make(model, resolution=value, duration_seconds=8))
    assert (out.resolution, out.duration_seconds) == (value, 8)
    assert check(make(model, resolution=value)).duration_seconds == 8  # default is 8


@pytest.mark.parametrize("model", VEO30)
def test_veo30_1080p_landscape_only(model: str) -> None:
    assert check(make(model, resolution="1080p", aspect_ratio="16:9")).resolution == "1080p"
    assert check(make(model, resolution="720p", aspect_ratio="9:16")).resolution == "720p"
    refused(
        make(model, resolution="1080p", aspect_ratio="9:16"),
        "1080p is not supported for an aspect ratio of 9:16.",
    )


@pytest.mark.parametrize(
    ("model", "value"), [(m, r) for m in VEO31 for r in SPEC[m].resolutions if r != "720p"]
)
def test_veo31_hd_portrait_ok(model: str, value: str) -> None:
    assert check(make(model, resolution=value, aspect_ratio="9:16")).aspect_ratio == "9:16"


# -------------------------------------------------------------------------- durationSeconds


@pytest.mark.parametrize(("model", "duration"), [(m, d) for m in ALL for d in SPEC[m].durations])
def test_duration_accepted(model: str, duration: int) -> None:
    assert check(make(model, duration_seconds=duration)).duration_seconds == duration


@pytest.mark.parametrize(
    ("model", "duration"),
    [
        (m, d)
        for m in ALL
        for d in (-1, 0, 1, 2, 3, 4, 5, 7, 9, 10, 16)
        if d not in SPEC[m].durations
    ],
)
def test_duration_out_of_bound(model: str, duration: int) -> None:
    low = 5 if SPEC[model].veo2 else 4
    refused(make(model, duration_seconds=duration), BOUND.format("durationSeconds", low, 8))


def test_duration_bounds_text_per_family() -> None:
    refused(make("veo-2.0-generate-001", duration_seconds=4), BOUND.format("durationSeconds", 5, 8))
    refused(
        make("veo-3.1-generate-preview", duration_seconds=5),
        BOUND.format("durationSeconds", 4, 8),
    )


# ------------------------------------------------------------------------ 8 s requirements


def interpolation(model: str, **kw: object) -> GenerateRequest:
    return make(model, image=IMG, last_frame=IMG2, **kw)


@pytest.mark.parametrize(
    ("model", "duration"), [(m, d) for m in ALL for d in SPEC[m].durations if d != 8]
)
def test_interpolation_needs_8_seconds(model: str, duration: int) -> None:
    refused(interpolation(model, duration_seconds=duration), USE_CASE)


@pytest.mark.parametrize("model", ALL)
def test_interpolation_accepted(model: str) -> None:
    out = check(interpolation(model, duration_seconds=8))
    assert out.mode is Mode.INTERPOLATION
    assert check(interpolation(model)).duration_seconds == 8


@pytest.mark.parametrize(
    ("model", "duration"),
    [(m, d) for m in ALL if SPEC[m].assets for d in SPEC[m].durations if d != 8],
)
def test_references_need_8_seconds(model: str, duration: int) -> None:
    refused(make(model, reference_images=refs(1), duration_seconds=duration), USE_CASE)


@pytest.mark.parametrize(
    ("model", "duration"),
    [(m, d) for m in ALL if SPEC[m].extension for d in SPEC[m].durations if d != 8],
)
def test_extension_needs_8_seconds(model: str, duration: int) -> None:
    refused(make(model, video=VID, duration_seconds=duration), USE_CASE)


# ------------------------------------------------------------------------ personGeneration

TEXT_ROW = {"veo3": ("allow_all",), "veo2": ("allow_all", "allow_adult", "dont_allow")}
IMAGE_ROW = {"veo3": ("allow_adult",), "veo2": ("allow_adult", "dont_allow")}
RESTRICTED = {"veo3": ("allow_adult",), "veo2": ("dont_allow", "allow_adult")}
PERSON_VALUES = ("allow_all", "allow_adult", "dont_allow")


def mode_request(model: str, mode: Mode, **kw: object) -> GenerateRequest:
    spec = SPEC[model]
    if mode is Mode.IMAGE:
        return make(model, image=IMG, **kw)
    if mode is Mode.INTERPOLATION:
        return interpolation(model, **kw)
    if mode is Mode.REFERENCES:
        return make(model, reference_images=refs(1, "asset" if spec.assets else "style"), **kw)
    if mode is Mode.EXTENSION:
        return make(model, video=VID, **kw)
    return make(model, **kw)


def supported_modes(model: str) -> list[Mode]:
    spec = SPEC[model]
    modes = [Mode.TEXT, Mode.IMAGE, Mode.INTERPOLATION]
    if spec.assets or spec.style:
        modes.append(Mode.REFERENCES)
    if spec.extension:
        modes.append(Mode.EXTENSION)
    return modes


def person_row(model: str, mode: Mode, restricted: bool) -> tuple[str, ...]:
    family = "veo2" if SPEC[model].veo2 else "veo3"
    if restricted:
        return RESTRICTED[family]
    return (TEXT_ROW if mode in (Mode.TEXT, Mode.EXTENSION) else IMAGE_ROW)[family]


PERSON_CASES = [
    (m, mode, restricted, value)
    for m in ALL
    for mode in supported_modes(m)
    for restricted in (False, True)
    for value in PERSON_VALUES
]


@pytest.mark.parametrize(("model", "mode", "restricted", "value"), PERSON_CASES)
def test_person_generation(model: str, mode: Mode, restricted: bool, value: str) -> None:
    req = mode_request(model, mode, person_generation=value)
    assert req.mode is mode
    if value in person_row(model, mode, restricted):
        assert check(req, restricted_region=restricted).person_generation == value
    else:
        message = f"{value} for personGeneration is currently not supported."
        refused(req, message, restricted_region=restricted)


@pytest.mark.parametrize(
    ("model", "mode", "restricted"),
    [(m, mode, r) for m in ALL for mode in supported_modes(m) for r in (False, True)],
)
def test_person_generation_default(model: str, mode: Mode, restricted: bool) -> None:
    out = check(mode_request(model, mode), restricted_region=restricted)
    assert out.person_generation == person_row(model, mode, restricted)[0]


def test_person_generation_defaults_spelled_out() -> None:
    assert check(make("veo-2.0-generate-001"), restricted_region=True).person_generation == (
        "dont_allow"
    )
    assert check(make("veo-3.1-generate-preview", image=IMG)).person_generation == "allow_adult"
    assert check(make("veo-2.0-generate-001", image=IMG)).person_generation == "allow_adult"


def test_person_generation_case_insensitive_and_unknown() -> None:
    out = check(make("veo-2.0-generate-001", person_generation="DONT_ALLOW"))
    assert out.person_generation == "dont_allow"
    refused(
        make("veo-2.0-generate-001", person_generation="everyone"),
        "everyone for personGeneration is currently not supported.",
    )


def test_gateway_restricted_message() -> None:
    refused(
        make("veo-3.1-generate-preview", person_generation="allow_all"),
        "allow_all for personGeneration is currently not supported.",
        restricted_region=True,
    )


# ------------------------------------------------------------------------------------ seed


@pytest.mark.parametrize("seed", [0, 1, 1234, 4294967295])
def test_seed_accepted(seed: int) -> None:
    assert check(make("veo-3.1-generate-preview", seed=seed)).seed == seed


@pytest.mark.parametrize("seed", [-1, 4294967296, -(2**40), 2**64])
@pytest.mark.parametrize("model", ALL)
def test_seed_out_of_bound(model: str, seed: int) -> None:
    refused(make(model, seed=seed), BOUND.format("seed", 0, 4294967295))


# ----------------------------------------------------------------------------- sampleCount


def sample_limit(model: str, dialect: str) -> int:
    return SPEC[model].max_gemini if dialect == "gemini" else 4


SAMPLE_DIALECTS = ("gemini", "vertex", "videos")


@pytest.mark.parametrize(
    ("model", "dialect", "count"),
    [(m, d, n) for m in ALL for d in SAMPLE_DIALECTS for n in range(1, sample_limit(m, d) + 1)],
)
def test_sample_count_accepted(model: str, dialect: str, count: int) -> None:
    assert check(make(model, sample_count=count, dialect=dialect)).sample_count == count


@pytest.mark.parametrize(
    ("model", "dialect", "count"),
    [
        (m, d, n)
        for m in ALL
        for d in SAMPLE_DIALECTS
        for n in (0, -1, sample_limit(m, d) + 1, 5, 100)
        if not 1 <= n <= sample_limit(m, d)
    ],
)
def test_sample_count_out_of_bound(model: str, dialect: str, count: int) -> None:
    high = sample_limit(model, dialect)
    refused(make(model, sample_count=count, dialect=dialect), BOUND.format("sampleCount", 1, high))


def test_sample_count_veo2_gemini_text() -> None:
    refused(
        make("veo-2.0-generate-001", sample_count=3, dialect="gemini"),
        "The number value for `sampleCount` is out of bound. "
        "Please provide a value between 1 and 2, inclusive.",
    )


# -------------------------------------------------------------- enhancePrompt, generateAudio


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("value", [True, False])
def test_enhance_prompt(model: str, value: bool) -> None:
    req = make(model, enhance_prompt=value)
    if SPEC[model].enhance:
        assert check(req).enhance_prompt is value
    else:
        refused(req, NOT_SUPPORTED.format("enhancePrompt"))
    assert check(make(model)).enhance_prompt is None


def test_enhance_prompt_refusers_named_in_spec() -> None:
    refusers = sorted(m for m in ALL if not SPEC[m].enhance)
    assert refusers == ["veo-3.0-fast-generate-001", "veo-3.0-generate-001"]


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("value", [True, False])
def test_generate_audio(model: str, value: bool) -> None:
    req = make(model, generate_audio=value, dialect="vertex")
    if SPEC[model].veo2:
        refused(req, NOT_SUPPORTED.format("generateAudio"))
    else:
        assert check(req).generate_audio is value


# ------------------------------------------------------------------------- lastFrame, inputs


@pytest.mark.parametrize("model", ALL)
def test_last_frame_requires_image(model: str) -> None:
    refused(make(model, last_frame=IMG), USE_CASE)


@pytest.mark.parametrize("model", ALL)
def test_image_to_video_accepted(model: str) -> None:
    out = check(make(model, image=IMG, prompt=None))
    assert out.mode is Mode.IMAGE
    assert out.prompt is None


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("field", ["image", "last_frame"])
def test_empty_image_refused(model: str, field: str) -> None:
    kw: dict[str, object] = {"image": IMG, "last_frame": IMG2}
    kw[field] = MediaRef()
    name = "lastFrame" if field == "last_frame" else "image"
    err = refused(make(model, **kw), rules.empty_media(name).message)
    assert f"`{name}` has no image bytes" in err.message
    assert "types.Image(image_bytes=..., mime_type=...)" in err.message
    assert "types.Image.from_file(location=...)" in err.message
    assert "PIL" in err.message


def test_empty_reference_and_video_refused() -> None:
    err = refused(
        make("veo-3.1-generate-preview", reference_images=(ReferenceImage(MediaRef()),)),
        rules.empty_media("referenceImages.image").message,
    )
    assert "PIL" in err.message
    err = refused(
        make("veo-3.1-generate-preview", video=MediaRef()), rules.empty_media("video").message
    )
    assert "`video` has no data" in err.message


@pytest.mark.parametrize(
    "media",
    [MediaRef(gcs_uri="gs://b/i.png"), MediaRef(blob_key="k1"), MediaRef(data=b"x")],
)
def test_non_empty_media_forms_accepted(media: MediaRef) -> None:
    assert check(make("veo-3.1-generate-preview", image=media)).image == media


def test_image_size_limit() -> None:
    big = MediaRef(data=b"\0" * (rules.MAX_IMAGE_BYTES + 1), mime_type="image/png")
    ok = MediaRef(data=b"\0" * rules.MAX_IMAGE_BYTES, mime_type="image/png")
    assert rules.MAX_IMAGE_BYTES == 20 * 1024 * 1024
    assert check(make("veo-3.1-generate-preview", image=ok)).image == ok
    err = refused(
        make("veo-3.1-generate-preview", image=big),
        rules.image_too_large(rules.MAX_IMAGE_BYTES + 1).message,
    )
    assert "20 MB" in err.message
    refused(
        make("veo-3.1-generate-preview", image=IMG, last_frame=big),
        rules.image_too_large(rules.MAX_IMAGE_BYTES + 1).message,
    )


# --------------------------------------------------------------------------- referenceImages

REF_MODELS = [m for m in ALL if SPEC[m].assets or SPEC[m].style]
NO_REF_MODELS = [m for m in ALL if m not in REF_MODELS]


def test_reference_models_match_spec() -> None:
    assert REF_MODELS == [
        "veo-2.0-generate-exp",
        "veo-2.0-generate-preview",
        "veo-3.1-generate-001",
        "veo-3.1-generate-preview",
    ]


@pytest.mark.parametrize(("model", "n"), [(m, n) for m in REF_MODELS for n in (1, 2, 3)])
@pytest.mark.parametrize("kind", ["asset", "ASSET", "Asset"])
def test_asset_references_accepted(model: str, n: int, kind: str) -> None:
    out = check(make(model, reference_images=refs(n, kind)))
    assert out.mode is Mode.REFERENCES
    assert [r.reference_type for r in out.reference_images] == ["asset"] * n
    assert out.duration_seconds == 8


@pytest.mark.parametrize("model", REF_MODELS)
@pytest.mark.parametrize("n", [4, 5])
def test_too_many_references(model: str, n: int) -> None:
    message = (
        "The number of `referenceImages` is out of bound. "
        "Please provide between 1 and 3 reference images."
    )
    refused(make(model, reference_images=refs(n)), message)


@pytest.mark.parametrize("model", NO_REF_MODELS)
@pytest.mark.parametrize("kind", ["asset", "style"])
def test_references_refused_by_model(model: str, kind: str) -> None:
    refused(make(model, reference_images=refs(1, kind)), NOT_SUPPORTED.format("referenceImages"))


@pytest.mark.parametrize("model", REF_MODELS)
def test_references_not_with_image(model: str) -> None:
    refused(
        make(model, image=IMG, reference_images=refs(1)), NOT_SUPPORTED.format("referenceImages")
    )


@pytest.mark.parametrize("model", REF_MODELS)
def test_references_only_landscape(model: str) -> None:
    assert check(make(model, reference_images=refs(1), aspect_ratio="16:9")).aspect_ratio == "16:9"
    refused(make(model, reference_images=refs(1), aspect_ratio="9:16"), USE_CASE)


@pytest.mark.parametrize("kind", ["style", "STYLE"])
def test_style_reference_veo2_exp(kind: str) -> None:
    out = check(make("veo-2.0-generate-exp", reference_images=refs(1, kind)))
    assert out.reference_images[0].reference_type == "style"


@pytest.mark.parametrize(
    "references",
    [refs(2, "style"), (STYLE, ASSET), (ASSET, ASSET, STYLE)],
)
def test_style_reference_exactly_one(references: tuple[ReferenceImage, ...]) -> None:
    refused(make("veo-2.0-generate-exp", reference_images=references), USE_CASE)


def test_style_reference_refused_on_veo31() -> None:
    refused(make("veo-3.1-generate-preview", reference_images=refs(1, "style")), USE_CASE)


def test_unknown_reference_type() -> None:
    refused(
        make("veo-3.1-generate-preview", reference_images=refs(1, "MASK")),
        "The string value `MASK` for `referenceType` is invalid",
    )


def test_references_prompt_optional() -> None:
    assert (
        check(make("veo-3.1-generate-preview", reference_images=refs(1), prompt=None)).prompt
        is None
    )


# ---------------------------------------------------------------------------------- video

EXT_MODELS = [m for m in ALL if SPEC[m].extension]
NO_EXT_MODELS = [m for m in ALL if not SPEC[m].extension]


def test_extension_models_match_spec() -> None:
    assert EXT_MODELS == [  # every Veo 3.1 id but Lite's
        "veo-3.1-fast-generate-001",
        "veo-3.1-fast-generate-preview",
        "veo-3.1-generate-001",
        "veo-3.1-generate-preview",
    ]


@pytest.mark.parametrize("model", EXT_MODELS)
@pytest.mark.parametrize("resolution", [None, "720p", "720P"])
def test_extension_accepted(model: str, resolution: str | None) -> None:
    out = check(make(model, video=VID, resolution=resolution, duration_seconds=8))
    assert out.mode is Mode.EXTENSION
    assert (out.resolution, out.duration_seconds) == ("720p", 8)
    assert out.person_generation == "allow_all"
    assert check(make(model, video=VID, prompt=None)).prompt is None


@pytest.mark.parametrize("model", NO_EXT_MODELS)
def test_extension_refused_by_model(model: str) -> None:
    refused(make(model, video=VID), NOT_SUPPORTED.format("video"))


@pytest.mark.parametrize("model", EXT_MODELS)
@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_extension_needs_720p(model: str, resolution: str) -> None:
    refused(make(model, video=VID, resolution=resolution), USE_CASE)


@pytest.mark.parametrize("model", EXT_MODELS)
@pytest.mark.parametrize(
    "extra", [{"image": IMG}, {"image": IMG, "last_frame": IMG2}, {"reference_images": refs(1)}]
)
def test_extension_takes_video_only(model: str, extra: dict[str, object]) -> None:
    refused(make(model, video=VID, **extra), USE_CASE)


def test_extension_helpers() -> None:
    err = rules.extension_input_invalid("the video is 1080p")
    assert err.code == 400 and err.status == "INVALID_ARGUMENT"
    assert err.message.startswith("The input video cannot be extended: the video is 1080p.")
    assert "720p" in err.message and "141 seconds" in err.message and "9:16" in err.message
    assert rules.VIDEO_URI_NOT_FOUND == "Video URI not found in the request."
    assert rules.VIDEO_URI_UNPARSABLE == "Could not parse the file name"
    assert rules.video_uri_not_found().message == "Video URI not found in the request."
    assert rules.video_uri_unparsable().message == "Could not parse the file name"


# ---------------------------------------------------------------------------------- prompt

PROMPT_REQUIRED = (
    "A prompt is required for text-to-video generation. Please provide `prompt`, "
    "or an `image` or `video` to generate from."
)


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("prompt", [None, "", "   \n\t"])
def test_prompt_required_for_text(model: str, prompt: str | None) -> None:
    refused(make(model, prompt=prompt), PROMPT_REQUIRED)


@pytest.mark.parametrize("model", ALL)
def test_prompt_limit(model: str) -> None:
    ok = " ".join(["word"] * 1024)
    assert check(make(model, prompt=ok)).prompt == ok
    too_long = ", ".join(["word"] * 1025)
    refused(
        make(model, prompt=too_long),
        "The prompt is too long (about 1025 tokens). "
        "Please provide a prompt of at most 1024 tokens.",
    )
    refused(make(model, image=IMG, prompt=too_long), rules.prompt_too_long(1025).message)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a cat", 2),
        ("a cat, on a mat!", 5),
        ("don't stop", 3),
        ("一只猫", 3),
        ("x_y z", 3),
    ],
)
def test_count_tokens(text: str, tokens: int) -> None:
    assert rules.count_tokens(text) == tokens


# ---------------------------------------------------------------------- compressionQuality


@pytest.mark.parametrize(
    ("value", "expected"), [("optimized", "optimized"), ("LOSSLESS", "lossless")]
)
def test_compression_quality_accepted(value: str, expected: str) -> None:
    out = check(make("veo-3.0-generate-001", compression_quality=value, dialect="vertex"))
    assert out.compression_quality == expected


@pytest.mark.parametrize("value", ["high", "lossy", ""])
def test_compression_quality_refused(value: str) -> None:
    refused(
        make("veo-3.0-generate-001", compression_quality=value, dialect="vertex"),
        f"The string value `{value}` for `compressionQuality` is invalid",
    )


def test_vertex_extras_accepted() -> None:
    out = check(
        make(
            "veo-3.0-generate-001",
            dialect="vertex",
            fps=24,
            resize_mode="PAD",
            storage_uri="gs://b/out/",
            labels={"team": "x"},
        )
    )
    assert (out.fps, out.resize_mode, out.storage_uri) == (24, "pad", "gs://b/out/")
    assert out.labels == {"team": "x"}
