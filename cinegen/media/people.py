"""Does a video show a person? Haar cascade face detection on a few frames, for
personGeneration `dont_allow` (jobs/worker.py drops a sample that does, as Veo filters it).

The detector is the Viola-Jones cascade (P. Viola, M. Jones, "Rapid Object Detection using a
Boosted Cascade of Simple Features", CVPR 2001; with R. Lienhart's extended features) as
OpenCV runs it, with OpenCV's own trained cascades: `frontalface_alt2` and `profileface` (the
latter run on the frame and its mirror, since it was trained on one side). OpenCV 5 dropped
`CascadeClassifier` and its `cv2.data` files, so the two XML files (Intel License, kept in
their headers) ship in `cascades/` beside this module, and the evaluation is here in numpy:
an image pyramid (scale 1.1), integral images, every window's variance normalisation, the
stages with early rejection, vectorised over windows; and OpenCV's grouping of overlapping
hits (`groupRectangles`, eps 0.2, 3 neighbours). Nothing is downloaded.

What it cannot see: people too small (a face under about 20 px at the analysis width
`ANALYSIS_WIDTH`: ~50 px in a 720p frame), turned away, or hidden. It is a screen for a
self-hosted server, not a guarantee; README "Safety: people and prompts" says so.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CASCADES = Path(__file__).with_name("cascades")
ANALYSIS_WIDTH = 480  # frames are scaled down to this width (never up) before detection
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 3
GROUP_EPS = 0.2
SAMPLED_FRAMES = 5  # frames of each sample looked at: first, last and evenly between
_MIN_STD = 10.0  # OpenCV rejects windows this flat (HaarEvaluator::setWindow)
_CHUNK = 4_000_000  # gathered integral values held at once, to bound memory
_DENSE_SHARE = 0.3  # below this share of windows alive, stages run on those alone
_SIGNS = np.array([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class _Stage:
    threshold: float
    rects: np.ndarray  # (nodes, 3, 4) int: x, y, w, h of each node's feature rectangles
    weights: np.ndarray  # (nodes, 3) float: 0 for a missing third rectangle
    node_threshold: np.ndarray  # (nodes,)
    left: np.ndarray  # (nodes,) int: >= 0 a node, < 0 the leaf -(k + 1)
    right: np.ndarray
    roots: np.ndarray  # (weak classifiers,) their first nodes
    leaves: np.ndarray  # (leaves,)
    depth: int
    # The stage sum as a polynomial in the nodes' tests (g = 1 when a node sends left):
    # constant + linear @ g + pair_coef @ (g[pair_a] * g[pair_b]) (see _expand).
    constant: float
    linear: np.ndarray  # (nodes,)
    pair_a: np.ndarray  # (pairs,) node indices
    pair_b: np.ndarray
    pair_coef: np.ndarray


@dataclass(frozen=True)
class Cascade:
    """An OpenCV HAAR cascade (the new XML format, upright features)."""

    width: int
    height: int
    stages: tuple[_Stage, ...]

    @classmethod
    def load(cls, path: Path) -> Cascade:
        root = ET.parse(path).getroot()[0]
        if root.findtext("featureType", "").strip() != "HAAR":
            raise ValueError(f"{path.name}: not a HAAR cascade")
        features = [_feature(node) for node in _children(root, "features")]
        stages = tuple(_stage(node, features) for node in _children(root, "stages"))
        width = int(root.findtext("width", "0"))
        return cls(width, int(root.findtext("height", "0")), stages)

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Grouped detections (x, y, w, h) in `gray`'s pixels."""
        hits: list[tuple[int, int, int, int]] = []
        height, width = gray.shape
        factor = 1.0
        while True:
            size = (round(width / factor), round(height / factor))
            if size[0] < self.width + 1 or size[1] < self.height + 1:
                break
            scaled = gray if factor == 1.0 else cv2.resize(gray, size, interpolation=1)
            win = (round(self.width * factor), round(self.height * factor))
            for x, y in self._windows(scaled, step=2 if factor <= 2.0 else 1):
                hits.append((round(x * factor), round(y * factor), *win))
            factor *= SCALE_FACTOR
        return group_rectangles(hits, MIN_NEIGHBORS, GROUP_EPS)

    def _windows(self, image: np.ndarray, step: int) -> list[tuple[int, int]]:
        """The windows of one pyramid level that pass every stage (top-left corners).

        While many windows are alive a stage is run on the whole grid of windows at once
        (array slices of the integral image); once few are, on those alone (a gather)."""
        total, squares = cv2.integral2(image, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
        grid = _Grid(
            total,
            step,
            (image.shape[0] - self.height) // step + 1,
            (image.shape[1] - self.width) // step + 1,
        )
        inner = (1, 1, self.width - 2, self.height - 2)
        area = float(inner[2] * inner[3])
        s, sq = grid.rect_sum(*inner), _Grid(squares, *grid.shape_args).rect_sum(*inner)
        # area × the standard deviation over the window's inner rectangle (OpenCV's
        # `normrect`, 1 px in), by which the feature thresholds scale
        nf = np.sqrt(np.maximum(area * sq - s * s, 0.0))
        alive = nf > area * _MIN_STD  # OpenCV drops windows this flat
        remaining = list(self.stages)
        while remaining and alive.mean() >= _DENSE_SHARE:
            stage = remaining.pop(0)
            alive &= grid.stage_sums(stage, nf) >= stage.threshold
        if not remaining:
            return _corners(alive, step)
        ys, xs = np.nonzero(alive)
        stride = total.shape[1]
        base, scale, flat = (ys * step * stride + xs * step), nf[ys, xs], total.ravel()
        for stage in remaining:
            if base.size == 0:
                return []
            keep = _run_stage(stage, flat, stride, base, scale)
            base, scale = base[keep], scale[keep]
        return [(int(b % stride), int(b // stride)) for b in base]


@dataclass(frozen=True)
class _Grid:
    """The windows of one pyramid level as a grid (every `step` px), over integral `table`."""

    table: np.ndarray
    step: int
    rows: int
    cols: int

    @property
    def shape_args(self) -> tuple[int, int, int]:
        return self.step, self.rows, self.cols

    def rect_sum(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """The sum over rectangle (x, y, w, h) of every window, as a (rows, cols) array."""
        t, k = self.table, self.step

        def at(dy: int, dx: int) -> np.ndarray:
            return t[dy : dy + k * (self.rows - 1) + 1 : k, dx : dx + k * (self.cols - 1) + 1 : k]

        return at(y + h, x + w) - at(y, x + w) - at(y + h, x) + at(y, x)

    def stage_sums(self, stage: _Stage, nf: np.ndarray) -> np.ndarray:
        """Every window's stage sum, (rows, cols)."""
        goes_left = np.empty((len(stage.node_threshold), self.rows * self.cols), bool)
        for node, (rects, weights) in enumerate(zip(stage.rects, stage.weights, strict=True)):
            value = sum(
                weight * self.rect_sum(*rect)
                for rect, weight in zip(rects, weights, strict=True)
                if weight != 0.0
            )
            goes_left[node] = (value < stage.node_threshold[node] * nf).ravel()
        return _tree_sums(stage, goes_left).reshape(self.rows, self.cols)


def _corners(alive: np.ndarray, step: int) -> list[tuple[int, int]]:
    ys, xs = np.nonzero(alive)
    return [(int(x) * step, int(y) * step) for y, x in zip(ys, xs, strict=True)]


def _children(node: ET.Element, tag: str) -> list[ET.Element]:
    found = node.find(tag)
    return list(found) if found is not None else []


def _feature(node: ET.Element) -> tuple[np.ndarray, np.ndarray]:
    if node.findtext("tilted", "0").strip() not in ("", "0"):
        raise ValueError("tilted features are not supported")
    rects = np.zeros((3, 4), np.int64)
    weights = np.zeros(3)
    for i, rect in enumerate(_children(node, "rects")):
        values = (rect.text or "").split()
        rects[i] = [int(float(v)) for v in values[:4]]
        weights[i] = float(values[4])
    return rects, weights


def _stage(node: ET.Element, features: list[tuple[np.ndarray, np.ndarray]]) -> _Stage:
    rects: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    thresholds: list[float] = []
    lefts: list[int] = []
    rights: list[int] = []
    roots: list[int] = []
    leaves: list[float] = []
    depth = 1
    for weak in _children(node, "weakClassifiers"):
        internal = (weak.findtext("internalNodes") or "").split()
        values = [float(v) for v in (weak.findtext("leafValues") or "").split()]
        first_node, first_leaf = len(thresholds), len(leaves)
        roots.append(first_node)
        count = len(internal) // 4
        depth = max(depth, count)
        for i in range(count):
            left, right, feature, threshold = internal[4 * i : 4 * i + 4]
            rects.append(features[int(feature)][0])
            weights.append(features[int(feature)][1])
            thresholds.append(float(threshold))
            lefts.append(_child(int(left), first_node, first_leaf))
            rights.append(_child(int(right), first_node, first_leaf))
        leaves.extend(values)
    constant, linear, pairs = _expand(lefts, rights, roots, leaves)
    return _Stage(
        threshold=float(node.findtext("stageThreshold", "0")),
        rects=np.array(rects),
        weights=np.array(weights),
        node_threshold=np.array(thresholds),
        left=np.array(lefts),
        right=np.array(rights),
        roots=np.array(roots),
        leaves=np.array(leaves),
        depth=depth,
        constant=constant,
        linear=linear.astype(np.float32),
        pair_a=np.array([a for a, _b in pairs], np.int64),
        pair_b=np.array([b for _a, b in pairs], np.int64),
        pair_coef=np.array(list(pairs.values()), np.float32),
    )


def _expand(
    lefts: list[int], rights: list[int], roots: list[int], leaves: list[float]
) -> tuple[float, np.ndarray, dict[tuple[int, int], float]]:
    """The stage sum as a polynomial in the node tests g (1: left, 0: right). A leaf is
    reached when every test on its path goes its way, a product of g or 1 - g; trees of at
    most two levels (OpenCV's face cascades) give a constant, one coefficient per node and
    one per pair of nodes on a path. Evaluating it is then a few matrix products instead of
    walking every tree for every window."""
    constant = 0.0
    linear = np.zeros(len(lefts))
    pairs: dict[tuple[int, int], float] = {}

    def walk(node: int, trail: list[tuple[int, int]]) -> None:
        nonlocal constant
        for child, way in ((lefts[node], 1), (rights[node], 0)):
            path = [*trail, (node, way)]
            if child >= 0:
                walk(child, path)
                continue
            value = leaves[-child - 1]
            # each factor is a + b·g: g itself (0 + 1·g) or 1 - g (1 - 1·g)
            factors = [(n, (0.0, 1.0) if w else (1.0, -1.0)) for n, w in path]
            if len(factors) == 1:
                ((n1, (a1, b1)),) = factors
                constant += value * a1
                linear[n1] += value * b1
            elif len(factors) == 2:
                (n1, (a1, b1)), (n2, (a2, b2)) = factors
                constant += value * a1 * a2
                linear[n1] += value * b1 * a2
                linear[n2] += value * a1 * b2
                pairs[(n1, n2)] = pairs.get((n1, n2), 0.0) + value * b1 * b2
            else:
                raise ValueError("trees deeper than two levels are not supported")

    for root in roots:
        walk(root, [])
    return constant, linear, pairs


def _child(value: int, first_node: int, first_leaf: int) -> int:
    """OpenCV's child index (> 0 a node of this tree, <= 0 the leaf -value) made global."""
    return first_node + value if value > 0 else -(first_leaf - value + 1)


def _corner_offsets(rects: np.ndarray, stride: int) -> np.ndarray:
    """(…, 4) offsets in a flattened integral image of each rectangle's corners, in the
    order _SIGNS weighs them: bottom-right, top-right, bottom-left, top-left."""
    x, y, w, h = rects[..., 0], rects[..., 1], rects[..., 2], rects[..., 3]
    return np.stack(
        [(y + h) * stride + x + w, y * stride + x + w, (y + h) * stride + x, y * stride + x],
        axis=-1,
    )


def _run_stage(
    stage: _Stage, flat: np.ndarray, stride: int, base: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Which windows pass `stage` (a bool mask over `base`). Each integral-image corner the
    stage reads is gathered once per window (neighbouring rectangles share corners), and the
    node values are one matrix product with the corners' signed weights."""
    corners, mix = _stage_corners(stage, stride)
    chunk = max(1, _CHUNK // len(corners))
    sums = np.empty(len(base))
    for start in range(0, len(base), chunk):
        part = base[start : start + chunk]
        values = flat[part[:, None] + corners[None, :]] @ mix  # (n, nodes)
        limits = stage.node_threshold[None] * scale[start : start + chunk, None]
        sums[start : start + chunk] = _tree_sums(stage, (values < limits).T)
    return sums >= stage.threshold


def _stage_corners(stage: _Stage, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct corner offsets the stage's rectangles read, and the (corners, nodes)
    matrix of their signed weights."""
    nodes = len(stage.node_threshold)
    offsets = _corner_offsets(stage.rects, stride).reshape(nodes, 12)
    weights = (_SIGNS[None, None, :] * stage.weights[:, :, None]).reshape(nodes, 12)
    corners, inverse = np.unique(offsets, return_inverse=True)
    mix = np.zeros((len(corners), nodes))
    np.add.at(mix, (inverse.reshape(nodes, 12), np.arange(nodes)[:, None]), weights)
    return corners, mix


def _tree_sums(stage: _Stage, goes_left: np.ndarray) -> np.ndarray:
    """The sum of the leaves each window reaches over the stage's weak classifiers;
    `goes_left` is (nodes, windows): whether each node's test sends the window left."""
    tests = np.ascontiguousarray(goes_left, dtype=np.float32)
    sums = stage.constant + stage.linear @ tests
    if len(stage.pair_coef):
        sums += stage.pair_coef @ (tests[stage.pair_a] * tests[stage.pair_b])
    return np.asarray(sums)


def group_rectangles(
    rects: list[tuple[int, int, int, int]], min_neighbors: int, eps: float
) -> list[tuple[int, int, int, int]]:
    """OpenCV's `groupRectangles`: clusters of similar rectangles with more than
    `min_neighbors` members, each averaged into one."""
    if len(rects) <= min_neighbors:
        return []
    boxes = np.array(rects, np.float64)
    x, y, w, h = boxes.T
    delta = eps * (np.minimum.outer(w, w) + np.minimum.outer(h, h)) * 0.5
    similar = (
        (np.abs(np.subtract.outer(x, x)) <= delta)
        & (np.abs(np.subtract.outer(y, y)) <= delta)
        & (np.abs(np.subtract.outer(x + w, x + w)) <= delta)
        & (np.abs(np.subtract.outer(y + h, y + h)) <= delta)
    )
    labels = _components(similar)
    groups = []
    for label in np.unique(labels):
        members = boxes[labels == label]
        if len(members) > min_neighbors:
            groups.append(tuple(int(round(v)) for v in members.mean(axis=0)))
    return groups  # type: ignore[return-value]


def _components(similar: np.ndarray) -> np.ndarray:
    """Connected components of the similarity graph (union-find)."""
    parent = list(range(len(similar)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(similar, 1)), strict=True):
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[b] = a
    return np.array([find(i) for i in range(len(similar))])


@functools.cache
def cascades() -> tuple[Cascade, Cascade]:
    """The frontal and profile face cascades, parsed once per process."""
    frontal = Cascade.load(CASCADES / "haarcascade_frontalface_alt2.xml")
    profile = Cascade.load(CASCADES / "haarcascade_profileface.xml")
    return frontal, profile


def analysis_gray(frame: np.ndarray) -> np.ndarray:
    """The frame in grey (OpenCV's luma weights), no wider than ANALYSIS_WIDTH, equalised
    as OpenCV's face samples advise (`equalizeHist`)."""
    gray = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    if width > ANALYSIS_WIDTH:
        size = (ANALYSIS_WIDTH, max(1, round(height * ANALYSIS_WIDTH / width)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return cv2.equalizeHist(gray)


def faces(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Faces (x, y, w, h in the frame's pixels) in an H×W×3 RGB frame: frontal, or in
    profile facing either way."""
    gray = analysis_gray(frame)
    frontal, profile = cascades()
    found = frontal.detect(gray) or profile.detect(gray)
    if not found:
        mirrored = profile.detect(np.ascontiguousarray(gray[:, ::-1]))
        found = [(gray.shape[1] - x - w, y, w, h) for x, y, w, h in mirrored]
    ratio = frame.shape[1] / gray.shape[1]
    return [
        (round(x * ratio), round(y * ratio), round(w * ratio), round(h * ratio))
        for x, y, w, h in found
    ]


def shows_person(frames: Iterable[np.ndarray]) -> bool:
    """True if any of `frames` shows a face."""
    return any(faces(frame) for frame in frames)


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
