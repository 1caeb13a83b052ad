"""Vertex's `cameraControl` for the diffusers pipelines: none of them takes a camera path, so
the move is said in the prompt, in the words video models are captioned with, and the notes
say that this is how it was passed (`metadata.notes.camera_control`)."""

from __future__ import annotations

PHRASES: dict[str, str] = {
    "fixed": "static camera, locked-off shot, the camera does not move",
    "pan_left": "the camera pans left",
    "pan_right": "the camera pans right",
    "tilt_up": "the camera tilts up",
    "tilt_down": "the camera tilts down",
    "truck_left": "the camera trucks left, moving sideways to the left",
    "truck_right": "the camera trucks right, moving sideways to the right",
    "pedestal_up": "the camera pedestals up, rising vertically",
    "pedestal_down": "the camera pedestals down, lowering vertically",
    "push_in": "the camera pushes in toward the subject",
    "pull_out": "the camera pulls out away from the subject",
}


def camera_prompt(prompt: str, control: str | None) -> str:
    """The prompt with the camera move appended as a sentence of its own (unchanged without
    one)."""
    if control is None:
        return prompt
    phrase = PHRASES[control]
    text = prompt.rstrip()
    if not text:
        return phrase[0].upper() + phrase[1:] + "."
    end = "" if text.endswith((".", "!", "?")) else "."
    return f"{text}{end} {phrase[0].upper()}{phrase[1:]}."


def camera_note(control: str | None) -> dict[str, str]:
    """The notes entry that says how the move reached the pipeline (none without one)."""
    if control is None:
        return {}
    return {"camera_control": f'{control}: appended to the prompt as "{PHRASES[control]}"'}
