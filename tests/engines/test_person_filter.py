"""personGeneration `dont_allow` (media/people.py, jobs/worker.py): OpenCV's face and body
cascades on frames with and without a person, the frame sampler, and samples that show a person
dropped as Veo filters them, read back through the real google-genai SDK: fewer
`generated_videos`, `rai_media_filtered_count` and Veo's reason (support code 39322892,
"Person/Face").

No photo is downloaded: the face is drawn (an oval, hair, brows, eyes, nose, mouth), and so are
two silhouettes, head and shoulders and a walking figure, which OpenCV's own cascades find; the
photographs are the ones scikit-image ships in its package (`skimage/data`)."""

from __future__ import annotations

import base64
import importlib.util
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from google import genai
from google.genai import types
from prometheus_client.parser import text_string_to_metric_families

from cinegen.core.errors import Internal
from cinegen.engines.base import RenderSpec
from cinegen.media import people
from cinegen.media.clip import Clip
from cinegen.service.prompt_policy import PERSON_SUPPORT_CODE, filtered_reason
from tests.support.app import InProcessServer, in_process
from tests.support.preview import ENGINE as PREVIEW
from tests.support.preview import spec_for

MODEL = "veo-2.0-generate-001"  # the Veo model that takes personGeneration dont_allow


def drawn_face(
    width: int = 640,
    height: int = 360,
    *,
    scale: float = 1.0,
    center: tuple[int, int] | None = None,
) -> np.ndarray:
    """An RGB frame with a face drawn on a blue-grey background."""
    img = np.full((height, width, 3), (90, 120, 150), np.uint8)
    cx, cy = center or (width // 2, height // 2)

    def at(x: float, y: float) -> tuple[int, int]:
        return int(cx + x * scale), int(cy + y * scale)

    def size(a: float, b: float) -> tuple[int, int]:
        return int(a * scale), int(b * scale)

    cv2.ellipse(img, at(0, -20), size(95, 120), 0, 0, 360, (60, 40, 30), -1)  # hair
    cv2.ellipse(img, at(0, 10), size(80, 105), 0, 0, 360, (225, 185, 160), -1)  # skin
    for side in (-1, 1):
        cv2.ellipse(img, at(side * 33, -22), size(20, 5), 0, 180, 360, (70, 50, 40), 4)
        cv2.ellipse(img, at(side * 33, -5), size(15, 8), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(img, at(side * 33, -5), int(7 * scale), (50, 35, 30), -1)
    cv2.line(img, at(0, -2), at(-6, 35), (190, 140, 120), 3)
    cv2.ellipse(img, at(0, 38), size(14, 5), 0, 0, 360, (170, 120, 105), -1)
    cv2.ellipse(img, at(0, 62), size(28, 9), 0, 0, 360, (150, 60, 60), -1)
    img = cv2.GaussianBlur(img, (0, 0), 2.0 * scale)
    noise = np.random.default_rng(0).normal(0, 3, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def landscape(width: int = 640, height: int = 360) -> np.ndarray:
    """Sky, hills and noise: no face."""
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    ramp = np.broadcast_to(y, (height, width))
    sky = np.stack([120 + 60 * ramp, 160 + 40 * ramp, 220 - 30 * ramp], axis=-1)
    hills = (y > 0.6 + 0.1 * np.sin(9 * x))[..., None]
    img = np.where(hills, np.array([60, 120, 50]), sky)
    noise = np.random.default_rng(1).normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def silhouette(*, walking: bool, width: int = 640, height: int = 360) -> np.ndarray:
    """A dark figure on a light grey background: head and shoulders filling the frame's
    height, or a whole figure walking."""
    img = np.full((height, width, 3), 200, np.uint8)
    cx, dark = width // 2, (40, 40, 40)
    if walking:
        top, s = 40, 0.8
        cv2.circle(img, (cx, top + int(18 * s)), int(16 * s), dark, -1)
        torso = [(-28, 40), (28, 40), (24, 130), (-24, 130)]
        cv2.fillPoly(img, [np.array([(cx + int(x * s), top + int(y * s)) for x, y in torso])], dark)
        for side in (-1, 1):
            for (x0, y0), (x1, y1), thick in (
                ((12, 130), (22, 250), 16),
                ((28, 45), (36, 135), 11),
            ):
                start = (cx + side * int(x0 * s), top + int(y0 * s))  # a leg, then an arm
                cv2.line(
                    img, start, (cx + side * int(x1 * s), top + int(y1 * s)), dark, int(thick * s)
                )
    else:
        cy, s = 150, 0.8
        cv2.ellipse(img, (cx, cy), (int(40 * s), int(52 * s)), 0, 0, 360, dark, -1)
        body = [(-25, 45), (25, 45), (120, 110), (130, height), (-130, height), (-120, 110)]
        points = [(cx + int(x * s), min(height, cy + int(y * s))) for x, y in body]
        cv2.fillPoly(img, [np.array(points, np.int32)], dark)
    return cv2.GaussianBlur(img, (0, 0), 2)


# ---------------------------------------------------------------- the detector


@pytest.mark.parametrize(
    "frame",
    [
        drawn_face(),
        drawn_face(scale=0.45),  # a small face
        drawn_face(scale=0.6, center=(180, 150)),  # off centre
        drawn_face(1280, 720, scale=1.5),  # a 720p frame, scaled down for analysis
        drawn_face()[:, ::-1].copy(),  # mirrored
    ],
    ids=["face", "small", "off-centre", "720p", "mirrored"],
)
def test_a_drawn_face_is_found(frame: np.ndarray) -> None:
    assert people.faces(frame)
    assert people.shows_person([landscape(), frame])


@pytest.mark.parametrize(
    "frame",
    [
        np.full((360, 640, 3), 128, np.uint8),
        np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (360, 1, 3)),
        np.random.default_rng(2).integers(0, 256, (360, 640, 3), dtype=np.uint8),
        np.random.default_rng(3).integers(0, 256, (720, 1280, 3), dtype=np.uint8),
        landscape(),
        landscape(1280, 720),
    ],
    ids=["flat", "gradient", "noise", "noise-720p", "landscape", "landscape-720p"],
)
def test_frames_without_a_person_pass(frame: np.ndarray) -> None:
    assert people.detect(frame) == []
    assert not people.shows_person([frame])


def test_the_face_box_is_where_the_face_is() -> None:
    (x, y, w, h), *_ = people.faces(drawn_face(scale=0.6, center=(180, 150)))
    assert abs(x + w / 2 - 180) < 15 and abs(y + h / 2 - 150) < 25
    assert 80 < w < 160


@pytest.mark.parametrize("walking", [False, True], ids=["head-and-shoulders", "walking"])
def test_a_drawn_body_is_found(walking: bool) -> None:
    frame = silhouette(walking=walking)
    assert people.faces(frame) == []  # no face drawn: the body cascades decide
    assert [kind for kind, _box in people.detect(frame)] == ["body"]
    assert people.shows_person([landscape(), frame])


def test_each_body_cascade_fires_on_its_figure() -> None:
    """The upper-body cascade sees head and shoulders; the full-body one the whole figure
    (which the upper-body one also sees, and ends the check on, before it)."""
    upper, full = (c for c in people.CASCADES if c.kind == "body")
    bust = people.analysis_gray(silhouette(walking=False))
    walker = people.analysis_gray(silhouette(walking=True))
    assert people.hits(upper, bust) and not people.hits(full, bust)
    ((x, y, w, h),) = people.hits(full, walker)
    assert h > 1.5 * w and abs(x + w / 2 - walker.shape[1] / 2) < 20


@pytest.mark.parametrize(
    "prompt",
    [
        "a woman smiling at the camera",
        "a crowd of people in a city street at night",
        "a man walking a dog in a park",  # a "walker" with fewer full-body neighbours
        "a forest in autumn, drone shot",  # a "profile" with fewer profile neighbours
    ],
)
def test_preview_frames_show_no_people(prompt: str) -> None:
    """Generated frames with no one in them pass: the preview engine's scenes (it draws
    shapes and gradients), at 720p, where lower `min_neighbors` gave false hits."""
    spec = spec_for(prompt=prompt, width=1280, height=720, num_frames=48)
    clip = PREVIEW.render(spec, lambda _: None)
    frames = [frame for i, frame in enumerate(clip.frames) if i in (0, 24, 36)]
    assert [people.detect(frame) for frame in frames] == [[], [], []]


# ------------------------------------------------------- photographs (scikit-image's own)


def _skimage_data() -> Path:
    """scikit-image's bundled sample data, found without importing skimage (only its files
    are read)."""
    spec = importlib.util.find_spec("skimage")
    assert spec is not None and spec.submodule_search_locations, "make test installs scikit-image"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


SKIMAGE_DATA = _skimage_data()
NO_PEOPLE = (
    "brick.png",
    "cell.png",
    "chelsea.png",  # a cat's face
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "color.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "logo.png",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "page.png",
    "phantom.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
    "chessboard_RGB.png",
    "chessboard_GRAY.png",
)


def photo(name: str) -> np.ndarray:
    bgr = cv2.imread(str(SKIMAGE_DATA / name), cv2.IMREAD_COLOR)
    assert bgr is not None, name
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name", NO_PEOPLE)
def test_photographs_without_people_pass(name: str) -> None:
    """Brick, coins, a logo and the moon gave "faces" and "upper bodies" at the settings
    tuned on drawn and generated frames only."""
    assert people.detect(photo(name)) == []


def test_a_photographed_face_is_found_where_it_is() -> None:
    """scikit-image's astronaut (Eileen Collins, NASA): her face, about 95 px wide, at
    (225, 115) in the 512x512 photograph."""
    (x, y, w, h), *_ = people.faces(photo("astronaut.png"))
    assert abs(x + w / 2 - 225) < 20 and abs(y + h / 2 - 115) < 20
    assert 60 < w < 140


def test_lfw_faces_are_found_and_non_faces_pass() -> None:
    """scikit-image's subset of Labeled Faces in the Wild: 100 face crops and 100 crops
    without a face (25x25 grey), each scaled to 120 px and framed by repeating its border."""
    crops = np.load(SKIMAGE_DATA / "lfw_subset.npy")
    assert crops.shape == (200, 25, 25)

    def framed(crop: np.ndarray) -> np.ndarray:
        big = cv2.resize((crop * 255).astype(np.uint8), (120, 120), interpolation=cv2.INTER_CUBIC)
        padded = cv2.copyMakeBorder(big, 40, 40, 40, 40, cv2.BORDER_REPLICATE)
        return cv2.cvtColor(padded, cv2.COLOR_GRAY2RGB)

    found = [bool(people.detect(framed(crop))) for crop in crops]
    assert sum(found[:100]) >= 95  # 98 measured
    assert sum(found[100:]) <= 1  # 0 measured


def test_sampler_passes_every_frame_and_keeps_a_few() -> None:
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(50)]
    sampler = people.FrameSampler(iter(frames), len(frames))
    passed = list(sampler)
    assert [int(f[0, 0, 0]) for f in passed] == list(range(50))
    assert [int(f[0, 0, 0]) for f in sampler.kept] == [0, 12, 24, 37, 49]
    assert people.sample_indices(3) == frozenset({0, 1, 2})


def test_cascades_are_opencvs_own() -> None:
    """Loaded from the installed OpenCV's cv2.data (nothing shipped or downloaded), once per
    thread: a CascadeClassifier is not to be shared between threads."""
    loaded = people.classifiers()
    assert people.cascade_dir() == Path(cv2.data.haarcascades)
    sizes = {name: tuple(c.getOriginalWindowSize()) for name, c in loaded.items()}
    assert sizes == {
        "haarcascade_frontalface_alt2.xml": (20, 20),
        "haarcascade_profileface.xml": (20, 20),
        "haarcascade_upperbody.xml": (22, 18),
        "haarcascade_fullbody.xml": (14, 28),
    }
    assert people.classifiers() is loaded
    other: list[dict[str, cv2.CascadeClassifier]] = []
    thread = threading.Thread(target=lambda: other.append(people.classifiers()))
    thread.start()
    thread.join()
    assert other[0] is not loaded
    assert all(other[0][name] is not loaded[name] for name in loaded)


def test_a_missing_cascade_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(people, "cascade_dir", lambda: Path("/nonexistent"))
    with pytest.raises(Internal):
        people._load("haarcascade_fullbody.xml")


# ---------------------------------------------------------------- through the server


class FaceEngine:
    """Draws a face or a landscape in each sample, as `plan` says (one entry a render, in
    order: the server runs one job at a time here)."""

    name = "faces-test"

    def __init__(self) -> None:
        self.plan: list[bool] = []

    def render(self, spec: RenderSpec, progress: Callable[[float], None]) -> Clip:
        progress(0.5)
        face = self.plan.pop(0)
        scale = spec.width / 640
        frame = drawn_face(spec.width, spec.height, scale=scale) if face else None
        frame = landscape(spec.width, spec.height) if frame is None else frame
        return Clip(
            frames=iter([frame] * 12), num_frames=12, width=spec.width, height=spec.height, fps=24
        )


ENGINE = FaceEngine()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    root = tmp_path_factory.mktemp("people") / "data"
    with in_process(root, workers=1, engines={"preview": ENGINE}) as app:
        yield app


def sdk(server: InProcessServer) -> genai.Client:
    """The real SDK, its HTTP through the in-process app (no socket)."""
    options = types.HttpOptions(base_url=server.url, httpx_client=server.client(timeout=120))
    return genai.Client(api_key="anything", http_options=options)


def generate(
    server: InProcessServer, person: str, faces: list[bool]
) -> types.GenerateVideosOperation:
    """A Veo 2 text-to-video request for len(faces) samples, the i-th showing a face if
    faces[i], polled with the SDK until done."""
    ENGINE.plan = list(faces)
    client = sdk(server)
    operation = client.models.generate_videos(
        model=MODEL,
        source=types.GenerateVideosSource(prompt="someone by a lake"),
        config=types.GenerateVideosConfig(
            duration_seconds=5, number_of_videos=len(faces), person_generation=person
        ),
    )
    for _ in range(1200):
        if operation.done:
            assert ENGINE.plan == []
            return operation
        time.sleep(0.1)
        operation = client.operations.get(operation)
    raise AssertionError("the operation did not finish")


def filtered_metric(server: InProcessServer) -> float:
    with server.client() as client:
        text = client.get("/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "cinegen_samples_filtered_total" and s.labels.get("reason") == "person"
    )


def test_a_sample_with_a_person_is_filtered(server: InProcessServer, tmp_path: Path) -> None:
    before = filtered_metric(server)
    op = generate(server, "dont_allow", [True, False])
    assert op.error is None
    assert op.response is not None
    assert len(op.response.generated_videos or []) == 1
    assert op.response.rai_media_filtered_count == 1
    assert op.response.rai_media_filtered_reasons == [filtered_reason(1, PERSON_SUPPORT_CODE)]
    assert op.response.rai_media_filtered_reasons[0].endswith("Support codes: 39322892")
    assert filtered_metric(server) == before + 1
    # what is left is served, and shows no one
    video = op.response.generated_videos[0].video
    assert video is not None and video.uri
    with server.client() as client:
        data = client.get(video.uri.replace(server.url, "")).content
    path = tmp_path / "kept.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert not people.shows_person([frame])


def test_all_samples_filtered_is_done_with_none(server: InProcessServer) -> None:
    op = generate(server, "dont_allow", [True, True])
    assert op.done and op.error is None
    assert op.response is not None
    assert not op.response.generated_videos
    assert op.response.rai_media_filtered_count == 2
    assert op.response.rai_media_filtered_reasons == [filtered_reason(2, PERSON_SUPPORT_CODE)]


def test_people_are_kept_when_allowed(server: InProcessServer) -> None:
    op = generate(server, "allow_all", [True, True])
    assert op.response is not None
    assert len(op.response.generated_videos or []) == 2
    assert not op.response.rai_media_filtered_count


def test_videos_dialect_reports_the_filter(server: InProcessServer) -> None:
    """`/v1/videos` of an operation with no sample left: `failure` and Veo's reason."""
    op = generate(server, "dont_allow", [True])
    assert op.name is not None
    with server.client() as client:
        listed = client.get(f"/v1beta/{op.name}").json()
        assert listed["done"] is True
        video_id = base64.urlsafe_b64encode(op.name.encode()).decode().rstrip("=")
        video = client.get(f"/v1/videos/{video_id}").json()
    assert video["status"] == "failure", video
    assert video["fail_reason"] == filtered_reason(1, PERSON_SUPPORT_CODE)
