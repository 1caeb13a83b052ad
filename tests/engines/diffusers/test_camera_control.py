"""Vertex's `cameraControl` in the diffusers engine (issue 30): no pipeline here takes a camera
path, so the move is said in the prompt the pipeline is called with, and the notes say so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cinegen.core.request import Mode
from cinegen.core.rules import CAMERA_CONTROLS
from cinegen.engines.base import RenderSpec
from cinegen.engines.diffusers import engine as engine_module
from cinegen.engines.diffusers.camera import PHRASES, camera_note, camera_prompt
from cinegen.engines.diffusers.config import load_registry
from cinegen.engines.diffusers.engine import DiffusersEngine
from cinegen.engines.diffusers.loading import LoadOptions

pytestmark = pytest.mark.xdist_group("diffusers")


def test_every_vertex_value_has_words() -> None:
    assert set(PHRASES) == set(CAMERA_CONTROLS)


def test_the_move_is_a_sentence_after_the_prompt() -> None:
    assert camera_prompt("a red cat", "pan_right") == "a red cat. The camera pans right."
    assert camera_prompt("A red cat!", "push_in") == (
        "A red cat! The camera pushes in toward the subject."
    )
    assert camera_prompt("", "tilt_up") == "The camera tilts up."
    assert camera_prompt("a red cat", None) == "a red cat"
    assert camera_note(None) == {}


def test_the_pipeline_gets_the_move_and_the_notes_say_so(
    registry_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []
    real = engine_module.call_kwargs

    def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
        prompts.append(kwargs["prompt"])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "call_kwargs", recording)
    engine = DiffusersEngine(load_registry(registry_file), LoadOptions(max_loaded=1))
    first = np.full((54, 96, 3), 120, np.uint8)
    spec = RenderSpec(
        mode=Mode.IMAGE,
        prompt="a red cat",
        negative_prompt="",
        width=96,
        height=54,
        fps=24,
        num_frames=24,
        seed=1,
        audio=False,
        first_frame=first,
        model="tiny-wan",
        camera_control="truck_left",
    )
    clip = engine.render(spec, lambda _: None)
    frames = list(clip.frames)
    assert len(frames) == 24
    assert prompts and all(
        p.endswith(f"{PHRASES['truck_left'][0].upper()}{PHRASES['truck_left'][1:]}.")
        for p in prompts
    )
    assert prompts[0].startswith("a red cat. ")
    assert clip.notes["camera_control"].startswith("truck_left: appended to the prompt")
