"""Does a video show a person? OpenCV's Haar cascades on a few frames, for personGeneration
`dont_allow` (jobs/worker.py drops a sample that does, as Veo filters it).

The detector is OpenCV's `CascadeClassifier` (Viola-Jones, with R. Lienhart's extended
features) with the cascades OpenCV ships in `cv2.data.haarcascades`: frontal faces
(`frontalface_alt2`), faces in profile (`profileface`, on the frame and on its mirror, since it
was trained on one side), upper bodies (head and shoulders) and full bodies. OpenCV 5 dropped
both the class and the files, hence `opencv-python-headless<5` in pyproject.toml. Nothing is
downloaded.

Each cascade's `minNeighbors` is one above the highest that gave a hit on pictures that show
no one: noise, flat and graded frames, 70 frames of the preview engine's scenes for 14
prompts about people and places, and the 23 photographs without people that scikit-image
ships (bricks, coins, the moon, a cat, a horse, motorcycles, a rocket...; the tests read them
and a subset of LFW, 100 faces and 100 non-faces, from `skimage/data`). With fewer
neighbours the profile cascade finds a "face" in a preview forest, the full-body one a
"walker" in a park or a horse, the frontal one a face in a brick wall (4) and the upper-body
one head and shoulders in coins, a logo and the moon (up to 8). With these settings 98 of
the 100 LFW faces are found and none of the 100 non-faces.

What it cannot see: people too small (a face under about 20 px at the analysis width
`ANALYSIS_WIDTH`: ~50 px in a 720p frame), turned away, or hidden (scikit-image's cameraman,
his face behind his camera, is missed). It is a screen for a
self-hosted server, not a guarantee; README "Safety: people and prompts" says so.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cinegen.core.errors import Internal

ANALYSIS_WIDTH = 480  # frames are scaled down to this width (never up) before detection
SAMPLED_FRAMES = 5  # frames of each sample looked at: first, last and evenly between
SCALE_FACTOR = 1.1  # the pyramid's step: 1.05 doubles the cost and adds false hits


@dataclass(frozen=True)
class Cascade:
    """One of OpenCV's shipped cascades and how it is run."""

    kind: str  # what a hit is: "face" or "body"
    file: str  # in cv2.data.haarcascades
    min_neighbors: int  # overlapping raw hits a detection needs (OpenCV's groupRectangles)
    mirrored: bool = False  # also run on the mirrored frame (trained on one side only)


CASCADES = (
    Cascade("face", "haarcascade_frontalface_alt2.xml", min_neighbors=5),
    Cascade("face", "haarcascade_profileface.xml", min_neighbors=8, mirrored=True),
    Cascade("body", "haarcascade_upperbody.xml", min_neighbors=9),
    Cascade("body", "haarcascade_fullbody.xml", min_neighbors=7),
)
_loaded = threading.local()  # a CascadeClassifier is not to be shared between threads


def cascade_dir() -> Path:
    """Where the installed OpenCV keeps its Haar cascades."""
    return Path(cv2.data.haarcascades)  # type: ignore[attr-defined]  # not in OpenCV's stubs


def classifiers() -> dict[str, cv2.CascadeClassifier]:
    """This thread's classifiers by file name, loaded on its first call."""
    found: dict[str, cv2.CascadeClassifier] | None = getattr(_loaded, "classifiers", None)
    if found is None:
        found = {cascade.file: _load(cascade.file) for cascade in CASCADES}
        _loaded.classifiers = found
    return found


def _load(name: str) -> cv2.CascadeClassifier:
    classifier = cv2.CascadeClassifier(str(cascade_dir() / name))
    if classifier.empty():
        raise Internal(f"OpenCV's cascade {name} is missing from {cascade_dir()}")
    return classifier


def analysis_gray(frame: np.ndarray) -> np.ndarray:
    """The frame in grey (OpenCV's luma weights), no wider than ANALYSIS_WIDTH, equalised
    as OpenCV's face samples advise (`equalizeHist`)."""
    gray = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    if width > ANALYSIS_WIDTH:
        size = (ANALYSIS_WIDTH, max(1, round(height * ANALYSIS_WIDTH / width)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return cv2.equalizeHist(gray)


def hits(cascade: Cascade, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The cascade's detections (x, y, w, h) in `gray`, and on its mirror if it says so."""
    classifier = classifiers()[cascade.file]
    neighbors = cascade.min_neighbors
    boxes = classifier.detectMultiScale(gray, scaleFactor=SCALE_FACTOR, minNeighbors=neighbors)
    found = [tuple(int(v) for v in box) for box in boxes]
    if cascade.mirrored and not found:
        mirrored = np.ascontiguousarray(gray[:, ::-1])
        mirror = classifier.detectMultiScale(
            mirrored, scaleFactor=SCALE_FACTOR, minNeighbors=neighbors
        )
        found = [(gray.shape[1] - int(x) - int(w), int(y), int(w), int(h)) for x, y, w, h in mirror]
    return found  # type: ignore[return-value]


def detect(
    frame: np.ndarray, kinds: frozenset[str] = frozenset({"face", "body"})
) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(kind, box) of what the first cascade with a hit found in an H×W×3 RGB frame, the box
    in the frame's pixels; the later cascades are not run (one hit decides)."""
    gray = analysis_gray(frame)
    ratio = frame.shape[1] / gray.shape[1]
    for cascade in CASCADES:
        if cascade.kind not in kinds:
            continue
        found = hits(cascade, gray)
        if found:
            return [(cascade.kind, _scaled(box, ratio)) for box in found]
    return []


def _scaled(box: tuple[int, int, int, int], ratio: float) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return round(x * ratio), round(y * ratio), round(w * ratio), round(h * ratio)


def faces(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Faces (x, y, w, h in the frame's pixels) in an H×W×3 RGB frame: frontal, or in
    profile facing either way."""
    return [box for _kind, box in detect(frame, frozenset({"face"}))]


def shows_person(frames: Iterable[np.ndarray]) -> bool:
    """True if any of `frames` shows a face or a body."""
    return any(detect(frame) for frame in frames)


def sample_indices(num_frames: int, count: int = SAMPLED_FRAMES) -> frozenset[int]:
    """`count` frame indices spread evenly from the first frame to the last."""
    if num_frames <= 0:
        return frozenset()
    return frozenset(np.linspace(0, num_frames - 1, min(count, num_frames)).round().astype(int))


class FrameSampler:
    """Passes a clip's frames through to the encoder unchanged, keeping copies of those at
    `indices`, so the check needs no second render nor a decode of the MP4."""

    def __init__(self, frames: Iterator[np.ndarray], num_frames: int) -> None:
        self._frames = frames
        self._indices = sample_indices(num_frames)
        self.kept: list[np.ndarray] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        for index, frame in enumerate(self._frames):
            if index in self._indices:
                self.kept.append(np.array(frame, copy=True))
            yield frame
