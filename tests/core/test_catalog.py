"""The catalog's rows for the late-2026 ids (issue 30): Veo 3.1 Lite and the Vertex GA ids, and
Veo 3.0 flagged deprecated yet served."""

from __future__ import annotations

import pytest

from cinegen.core.catalog import MODELS, VEO30_RETIREMENT, Catalog, served_by
from cinegen.core.request import GenerateRequest
from cinegen.core.rules import check

VEO30 = sorted(m for m in MODELS if m.startswith("veo-3.0-"))


def test_new_ids_have_their_own_rows() -> None:
    for model in (
        "veo-3.1-lite-generate-preview",
        "veo-3.1-generate-001",
        "veo-3.1-fast-generate-001",
        "veo-3.1-lite-generate-001",
    ):
        row = MODELS[model]
        assert (row.id, row.family, row.engine) == (model, "veo-3.1", "preview")


def test_ga_rows_match_their_preview_rows() -> None:
    """The GA ids take what their preview twins take; only the id and name differ."""
    for preview, ga in (
        ("veo-3.1-generate-preview", "veo-3.1-generate-001"),
        ("veo-3.1-fast-generate-preview", "veo-3.1-fast-generate-001"),
        ("veo-3.1-lite-generate-preview", "veo-3.1-lite-generate-001"),
    ):
        a, b = MODELS[preview], MODELS[ga]
        assert (a.resolutions, a.max_references_asset, a.extension, a.durations, a.audio) == (
            b.resolutions,
            b.max_references_asset,
            b.extension,
            b.durations,
            b.audio,
        )


def test_lite_rows() -> None:
    for model in ("veo-3.1-lite-generate-preview", "veo-3.1-lite-generate-001"):
        row = MODELS[model]
        assert row.resolutions == ("720p", "1080p")
        assert (row.max_references_asset, row.style_reference, row.extension) == (0, False, False)
        assert "4k" not in row.description and "extension" not in row.description


def test_veo30_deprecated_everything_else_current() -> None:
    assert VEO30 == [
        "veo-3.0-fast-generate-001",
        "veo-3.0-fast-generate-preview",
        "veo-3.0-generate-001",
        "veo-3.0-generate-preview",
    ]
    assert VEO30_RETIREMENT == "2026-06-30"
    assert sorted(m for m, row in MODELS.items() if row.deprecated) == VEO30
    for model in VEO30:
        row = MODELS[model]
        assert row.deprecation.startswith("Deprecated: retired on Vertex AI on 2026-06-30; use ")
        assert row.deprecation in row.description
    assert all(row.deprecation == "" for m, row in MODELS.items() if m not in VEO30)


@pytest.mark.parametrize("model", VEO30)
def test_deprecated_ids_still_pass_the_rules(model: str) -> None:
    out = check(GenerateRequest(model=model, prompt="a kite"))
    assert (out.model, out.duration_seconds, out.resolution) == (model, 8, "720p")


def test_deprecation_survives_another_engine() -> None:
    """An engine that takes a deprecated id over (the diffusers registry) keeps the flag and
    its words; only the preview engine's note is replaced."""
    row = served_by(MODELS["veo-3.0-generate-001"], "diffusers", " Served by diffusers.")
    catalog = Catalog()
    catalog.add(row)
    got = catalog.get("models/veo-3.0-generate-001")
    assert got is not None and got.engine == "diffusers" and got.deprecated
    assert got.description.endswith(f"{got.deprecation} Served by diffusers.")
