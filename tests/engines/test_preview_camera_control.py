"""Vertex's `cameraControl` in the preview engine, measured on the frames (issue 30).

The test image is a landscape (tests/support/camera.py): a soft, pale sky above (far, by the
engine's depth cues) and sharp, saturated ground below (near). A pan or tilt turns the camera,
so the sky moves exactly as far as the ground; a truck or pedestal moves it, so the ground
moves and the sky stays; a push in makes the view grow, the near ground more. Measured between
frame 0 and the last frame, in a sky band and a ground band.

Figures at 320×180, 24 frames, seed 7 (last frame against frame 0): pan ±23.2 px in both bands
(the move's own size: 0.10 of the width per second over 0.76 s of eased time is 24.3 px);
truck ∓20.8 px on the ground, under 0.8 px in the sky; tilt ±10 px in both; pedestal ±9 px on
the ground, under 0.3 px in the sky; push in ×1.02 in the sky and ×1.06 on the ground, pull
out ×0.98 and ×0.945. The prompt's "slow pan left" without a control: 0.2 px in the sky,
11.3 px on the ground (the near layers only: what a pan did before).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from cinegen.engines.preview.camera_control import CONTROLS, SPEED_SPREAD
from cinegen.jobs.worker import sample_seed
from tests.support.camera import ground_band, landscape, scale, shift, sky_band
from tests.support.preview import ENGINE, spec_for

W, H = 320, 180
FRAMES = 24
SKY, GROUND = sky_band(H), ground_band(H)
MOVE_PX = 15.0  # a pan or truck moves at least this far by the last frame (measured 20.8-23.3)
LIFT_PX = 6.0  # a tilt or pedestal (measured 8.8-10.3)
STILL_PX = 1.5  # what "does not move" may measure
IMAGE = landscape(W, H)


def image_spec(control: str | None, **changes: object) -> RenderSpec:
    spec = spec_for(
        Mode.IMAGE,
        prompt="a meadow under clouds, slow pan left",
        width=W,
        height=H,
        num_frames=FRAMES,
        first_frame=IMAGE,
        camera_control=control,
    )
    return replace(spec, **changes)


def rendered(spec: RenderSpec) -> list[np.ndarray]:
    return list(ENGINE.render(spec, lambda _: None).frames)


@pytest.mark.parametrize(("control", "sign"), [("pan_left", 1), ("pan_right", -1)])
def test_a_pan_turns_the_whole_view_sky_included(control: str, sign: int) -> None:
    """pan_right turns the camera right: everything moves left, the sky as far as the ground."""
    frames = rendered(image_spec(control))
    assert np.array_equal(frames[0], IMAGE)
    sky, ground = shift(frames[0], frames[-1], SKY), shift(frames[0], frames[-1], GROUND)
    assert sign * ground[0] > MOVE_PX, ground
    assert abs(sky[0] - ground[0]) < 1.0, (sky, ground)
    assert max(abs(sky[1]), abs(ground[1])) < STILL_PX, (sky, ground)


@pytest.mark.parametrize(("control", "sign"), [("truck_left", 1), ("truck_right", -1)])
def test_a_truck_moves_the_near_ground_and_leaves_the_sky(control: str, sign: int) -> None:
    frames = rendered(image_spec(control))
    sky, ground = shift(frames[0], frames[-1], SKY), shift(frames[0], frames[-1], GROUND)
    assert sign * ground[0] > MOVE_PX, ground
    assert abs(sky[0]) < STILL_PX, sky


@pytest.mark.parametrize(("control", "sign"), [("tilt_up", 1), ("tilt_down", -1)])
def test_a_tilt_moves_the_whole_view_vertically(control: str, sign: int) -> None:
    """tilt_up turns the camera up: the view moves down in the frame, sky and ground alike."""
    frames = rendered(image_spec(control))
    sky, ground = shift(frames[0], frames[-1], SKY), shift(frames[0], frames[-1], GROUND)
    assert sign * sky[1] > LIFT_PX and sign * ground[1] > LIFT_PX, (sky, ground)
    assert abs(sky[1] - ground[1]) < 1.0, (sky, ground)
    assert max(abs(sky[0]), abs(ground[0])) < STILL_PX, (sky, ground)


@pytest.mark.parametrize(("control", "sign"), [("pedestal_up", 1), ("pedestal_down", -1)])
def test_a_pedestal_lifts_the_camera_with_parallax(control: str, sign: int) -> None:
    frames = rendered(image_spec(control))
    sky, ground = shift(frames[0], frames[-1], SKY), shift(frames[0], frames[-1], GROUND)
    assert sign * ground[1] > LIFT_PX, ground
    assert abs(sky[1]) < STILL_PX, sky


def test_push_in_grows_the_view_and_pull_out_shrinks_it() -> None:
    """The centre grows (the sky too, a little), the near ground more: parallax."""
    push = rendered(image_spec("push_in"))
    pull = rendered(image_spec("pull_out"))
    sky_in, ground_in = scale(push[0], push[-1], SKY), scale(push[0], push[-1], GROUND)
    assert sky_in > 1.005 and ground_in > sky_in, (sky_in, ground_in)
    assert scale(pull[0], pull[-1], GROUND) < 0.99


def test_fixed_holds_the_camera_still() -> None:
    """A still image under a fixed camera (a prompt that names a pan, no weather): every frame
    is frame 0."""
    frames = rendered(image_spec("fixed"))
    assert all(np.array_equal(frame, IMAGE) for frame in frames)


def test_the_control_overrides_the_prompts_move() -> None:
    """The prompt says "pan left"; the control says truck right: the truck is what happens,
    and the notes say so."""
    clip = ENGINE.render(image_spec("truck_right"), lambda _: None)
    frames = list(clip.frames)
    assert shift(frames[0], frames[-1], GROUND)[0] < -MOVE_PX
    assert clip.notes["camera"] == "truck_right"
    assert "truck_right" in str(clip.notes["camera_control"])


def test_each_sample_keeps_the_direction_and_varies_only_the_speed() -> None:
    """Vertex's samples get their own seeds; each keeps the requested pan (same sign, no
    drift up or down), at a speed within SPEED_SPREAD of the others'."""
    base = image_spec("pan_right")
    shifts = []
    for index in range(3):
        frames = rendered(replace(base, seed=sample_seed(base.seed, index)))
        assert np.array_equal(frames[0], IMAGE)
        dx, dy = shift(frames[0], frames[-1], GROUND)
        assert dx < -MOVE_PX and abs(dy) < STILL_PX, (dx, dy)
        shifts.append(-dx)
    spread = (1 + SPEED_SPREAD) / (1 - SPEED_SPREAD) * 1.05
    assert max(shifts) / min(shifts) < spread, shifts
    assert max(shifts) - min(shifts) > 0.3, shifts  # the speeds do differ


def test_every_vertex_value_is_a_move() -> None:
    from cinegen.core.rules import CAMERA_CONTROLS

    assert set(CONTROLS) == set(CAMERA_CONTROLS)
