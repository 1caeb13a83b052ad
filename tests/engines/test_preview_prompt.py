"""Reading prompts into scene plans: the vocabulary the preview engine responds to."""

from __future__ import annotations

import pytest

from cinegen.engines.prompt import parse_prompt


@pytest.mark.parametrize(
    ("prompt", "camera"),
    [
        ("a slow pan left across the valley", "pan_left"),
        ("the camera pans right over the city", "pan_right"),
        ("zoom in on the lighthouse", "zoom_in"),
        ("pull back to reveal the coast", "zoom_out"),
        ("tilt up to the sky", "tilt_up"),
        ("a dolly shot through the forest", "dolly_in"),
        ("drone footage of the mountains", "drone"),
        ("a tracking shot of a runner", "truck_right"),
        ("static shot of a lake", "static"),
        ("a lake", "default"),
    ],
)
def test_camera_words(prompt: str, camera: str) -> None:
    assert parse_prompt(prompt).camera == camera


def test_palette_weather_setting_and_speed_words() -> None:
    plan = parse_prompt("A quick drone flight over snowy mountains at sunset, blue tones, fog")
    assert plan.time_of_day == "sunset" and plan.setting == "mountains"
    assert {"snow", "fog"} <= plan.weather and "cool" in plan.tones and plan.speed > 1


def test_negations_in_the_prompt_and_the_negative_prompt() -> None:
    plan = parse_prompt("no rain and a sunset over the sea, without music", "birds, fog")
    assert "rain" not in plan.weather and plan.time_of_day == "sunset"
    assert not plan.music and "birds" not in plan.subjects and "fog" not in plan.weather
    assert parse_prompt("a static shot", "static").camera == "default"


def test_audio_cues_and_dialogue() -> None:
    plan = parse_prompt(
        'Waves crash; a bell rings. Upbeat fast music. She says "Look, the tide is in!"'
    )
    assert "ocean" in plan.ambience and "bell" in plan.sfx
    assert plan.music and plan.music_mood == "happy" and plan.tempo == "fast"
    assert plan.dialogue == ("Look, the tide is in!",)
    assert parse_prompt('he says "hi"', "dialogue").dialogue == ()
