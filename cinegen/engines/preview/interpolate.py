"""First + last frame: motion interpolation by optical flow, not a cross-fade.

Steps: estimate dense flow both ways (first→last, last→first) on small copies, and give the
pixels that fail the round trip (hidden in the other image) their neighbours' flow; for each
time t, forward-splat each flow to where its pixels are at t (nearest-to-camera = larger
motion wins a collision), fill the holes and filter out specks; then backward-warp both
full-resolution images to time t and blend them, trusting each image only where its splat
landed (the other one is occluded there); last, redo the pixels along motion edges at full
size, where the small flow is too coarse. A square moving left to right is one square in the
middle at t = 0.5, not two ghosts. Given a sample's `Detour` (samples.py), every pixel lands
where that detour moves the view at time t: splatted there, occlusion, trust and motion edges
move with it, and frame 0 and the last frame stay the given images.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import cv2
import numpy as np

from cinegen.engines.preview.samples import Detour
from cinegen.engines.preview.warp import four_channels, three_channels, warp_blend

FLOW_LONG_SIDE = 256
HOLD = 3  # frames that rest on the last image at the end
SPECK_FILTER = 5
"""The splatted flows are median-filtered over this many small-copy pixels: pixels at a moving
object's rim fail the round trip, get mixed motions from the hole filling and land as
scattered specks of the object along its path (a red ball crossing a photo of shapes, 960 ×
540: 331-564 red pixels away from it at t = 0.5-0.65, 6-144 filtered). A median keeps the
object's own outline; the motion-edge pass redraws it at full size."""
SHARED_SPLAT_LAG = 0.5
"""Frames share one splat, made at the middle of their time span, as long as no pixel of the
small copy is further than this (its pixels) from where that splat put it: motion boundaries
then lag at most that much."""


MAX_CANDIDATES = 4
PEAK_SHARE = 0.05
"""A correlation peak this share of the strongest one is a candidate motion: an object of a
hundredth of the frame crossing a still, textured background peaks at about a tenth."""
PEAK_RADIUS = 6  # pixels around a peak (small copy) that are its shoulders, not new peaks
BLOCK = 7  # matching window (pixels of the small copy) when choosing between candidates


def _small(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    size = (max(8, round(image.shape[1] * scale)), max(8, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow a→b (H×W×2, pixels) with DIS: good for small and medium motion."""
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)
    grey_a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    grey_b = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    # cv2's stubs make calc's `flow` required; None asks for a new array.
    return dis.calc(grey_a, grey_b, None)  # type: ignore[call-overload]


def global_shifts(
    a: np.ndarray, b: np.ndarray, count: int = MAX_CANDIDATES
) -> list[tuple[float, float]]:
    """The strongest translations between a and b, by phase correlation (several peaks).

    Each object moving as a whole (and the background) makes its own peak in the phase
    correlation surface, however far it moves: the classical cure for large displacements.
    """
    h, w = a.shape[:2]
    window = np.outer(_taper(h), _taper(w)).astype(np.float32)

    def spectrum(image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grey = (grey - grey.mean()) * window
        return np.fft.rfft2(grey, s=(2 * h, 2 * w))  # zero-padded: no wrap-around aliasing

    cross = spectrum(b) * np.conj(spectrum(a))
    surface: np.ndarray  # float32 (cv2's stubs widen what GaussianBlur returns)
    surface = np.fft.irfft2(cross / (np.abs(cross) + 1e-3), s=(2 * h, 2 * w)).astype(np.float32)
    h, w = 2 * h, 2 * w
    surface = cv2.GaussianBlur(surface, (0, 0), 1.0)
    peaks: list[tuple[float, float]] = []
    floor = None
    for _ in range(count):
        y, x = np.unravel_index(int(np.argmax(surface)), surface.shape)
        value = float(surface[y, x])
        floor = value * PEAK_SHARE if floor is None else floor
        if value < floor:
            break
        dy = y - h if y > h // 2 else y
        dx = x - w if x > w // 2 else x
        peaks.append((float(dx), float(dy)))
        r = PEAK_RADIUS
        surface[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] = -np.inf
        if y - r < 0 or x - r < 0 or y + r >= h or x + r >= w:  # wrap-around neighbours
            ys = np.arange(y - r, y + r + 1) % h
            xs = np.arange(x - r, x + r + 1) % w
            surface[np.ix_(ys, xs)] = -np.inf
    return peaks


CHANGED = 30
"""Levels (largest of R, G, B) by which a pixel must differ from the same pixel of the other
image to count as changed (`object_shifts`)."""
MIN_OBJECT_AREA = 12  # small-copy pixels: a smaller changed piece is noise


def object_shifts(
    a: np.ndarray, b: np.ndarray, count: int = MAX_CANDIDATES
) -> list[tuple[float, float]]:
    """Where the largest pieces of a that changed went in b, each found by matching its
    colours over the whole of b.

    A small object on a busy, still background makes a phase correlation peak too weak to
    count next to the background's (a red square crossing two thirds of a photo: under a
    twentieth of it). Where a and b differ is where it left and where it arrived; the piece
    it left, matched in b, is found where it arrived, however far. (The piece it arrived
    at, in a, is background, and its match a shift no pixel then takes.)
    """
    moved = (cv2.absdiff(a, b).max(axis=2) > CHANGED).astype(np.uint8)
    if not moved.any() or moved.mean() > 0.5:  # nothing, or everything, changed
        return []
    _, labels, stats, _ = cv2.connectedComponentsWithStats(moved, connectivity=8)
    largest = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:count] + 1
    shifts = []
    for label in largest:
        x, y, width, height, area = stats[label]
        if area < MIN_OBJECT_AREA:
            break
        template = a[y : y + height, x : x + width]
        mask = (labels[y : y + height, x : x + width] == label).astype(np.uint8)
        cost = cv2.matchTemplate(b, template, cv2.TM_SQDIFF, mask=mask)
        _, _, (bx, by), _ = cv2.minMaxLoc(cost)
        if (bx, by) != (x, y):
            shifts.append((float(bx - x), float(by - y)))
    return shifts


def _taper(n: int, share: float = 0.1) -> np.ndarray:
    """A window flat in the middle with cosine edges (objects near the border still count)."""
    edge = max(1, int(n * share))
    window = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge))
    window[:edge] = ramp
    window[-edge:] = ramp[::-1]
    return window


def _match_error(
    a: np.ndarray,
    b: np.ndarray,
    flow: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    brightening: np.ndarray | None = None,
) -> np.ndarray:
    """Block-averaged colour difference (summed over the channels) between a and b warped
    back along `flow`, less `brightening` (per channel, b's over a's) where it is given."""
    to_x, to_y, inside = _landing(flow, grid)
    warped = cv2.remap(
        b,
        to_x,
        to_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(1000, 1000, 1000),
    )
    difference = warped.astype(np.float32) - a.astype(np.float32)
    if brightening is not None:
        difference -= brightening.astype(np.float32)
    error = np.abs(difference).sum(axis=2)
    error[~inside] = 3 * 255
    return cv2.blur(error, (BLOCK, BLOCK))


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's (row, column), as float32 images."""
    gy, gx = np.mgrid[0:height, 0:width].astype(np.float32)
    return gy, gx


def _landing(
    flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel lands along `flow` (x, y), and whether that is inside the frame."""
    gy, gx = grid
    h, w = gy.shape
    to_x, to_y = gx + flow[..., 0], gy + flow[..., 1]
    inside = (to_x >= 0) & (to_x <= w - 1) & (to_y >= 0) & (to_y <= h - 1)
    return to_x, to_y, inside


def estimate_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow a→b: per pixel, the best of DIS flow and a few candidate shifts.

    DIS follows smooth, moderate motion; a shift candidate wins where it explains the pixel's
    neighbourhood clearly better (an object that jumped far). Ties keep DIS. The shifts come
    from the whole images (`global_shifts`) and from what changed between them
    (`object_shifts`).
    """
    h, w = a.shape[:2]
    grid = _grid(h, w)
    candidates = [dis_flow(a, b)]
    shifts = global_shifts(a, b)
    shifts += [shift for shift in object_shifts(a, b) if shift not in shifts]
    if (0.0, 0.0) not in shifts:
        shifts.append((0.0, 0.0))
    for dx, dy in shifts:
        candidates.append(np.broadcast_to(np.array([dx, dy], np.float32), (h, w, 2)))
    errors = np.stack([_match_error(a, b, c, grid) for c in candidates])
    errors[1:] += 4.0  # a shift must beat DIS by a margin
    best = np.argmin(errors, axis=0)
    best = cv2.medianBlur(best.astype(np.uint8), 5)
    flow = np.empty((h, w, 2), np.float32)
    for index, candidate in enumerate(candidates):
        chosen = best == index
        flow[chosen] = candidate[chosen]
    return flow


CONSISTENCY = 1.0  # small-copy pixels a round trip may miss, plus a tenth of the motion
MISMATCH = 60.0
"""A pixel unlike where its flow lands by more than this (`_match_error`: 20 grey levels a
channel) is not found in the other image. Measured on the small copies: pixels the flow does
match differ by 0-15 (90 % of them), two unrelated photos by 117 at the median."""


def consistent_flow(
    a: np.ndarray, b: np.ndarray, flow: np.ndarray, reverse: np.ndarray
) -> np.ndarray:
    """`flow` (a→b) where it is found to hold; elsewhere its neighbours' flow.

    A pixel that the other image hides (the background a moving ball uncovers) has no match
    there, and its estimated flow is noise: splatted, it leaves holes in both images' splats,
    and the frame shows a ghost of the ball where it started. Such a pixel fails the round
    trip (the flow there, then the reverse flow back, lands away from it). A pixel can also
    pass the round trip by chance and still look nothing like where it lands: two unrelated
    images have almost only such pixels, and their flow, noise from pixel to pixel, shreds
    the frames between into stripes. Both kinds are given the flow of the matched pixels
    around them (push-pull), as the region they belong to; two images with nothing in common
    then turn into each other along one smooth flow. The pair's overall brightening (an
    exposure change) is not counted as a mismatch. Pixels whose flow leaves the frame cannot
    be checked and are kept.
    """
    grid = _grid(*flow.shape[:2])
    to_x, to_y, inside = _landing(flow, grid)
    back = cv2.remap(reverse, to_x, to_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    miss = np.hypot(flow[..., 0] + back[..., 0], flow[..., 1] + back[..., 1])
    motion = np.hypot(flow[..., 0], flow[..., 1])
    brightening = b.mean(axis=(0, 1)) - a.mean(axis=(0, 1))
    alike = _match_error(a, b, flow, grid, brightening) <= MISMATCH
    matched = ~inside | ((miss <= CONSISTENCY + 0.1 * motion) & alike)
    return fill_holes(flow, matched.astype(np.float32))


class Splatter:
    """Forward-splats one flow field to any time t (the sorting is done once)."""

    def __init__(self, flow: np.ndarray) -> None:
        h, w = flow.shape[:2]
        self.shape = (h, w)
        vectors = flow.reshape(-1, 2)
        # Colliding pixels: the larger motion wins (a moving object passes in front of a still
        # background), so pixels are written in order of growing motion; later writes win.
        order = np.argsort(np.hypot(vectors[:, 0], vectors[:, 1]), kind="stable")
        ys, xs = np.divmod(order, w)
        self.xs = xs.astype(np.float32)
        self.ys = ys.astype(np.float32)
        self.vectors = np.ascontiguousarray(vectors[order])
        # Each (dx, dy) pair of float32 seen as one 8-byte item: the scatter below then moves
        # one item per pixel, several times faster than numpy's row-wise fancy assignment.
        self.packed = self.vectors.view(np.float64).ravel()

    def at(
        self, t: float, detour: Detour | None = None, when: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(field, coverage): field[q] is the flow of the pixel that lands on q at time t;
        coverage[q] is 1 where some pixel landed (0 = disoccluded, or a crack).

        With a `detour` (t > 0), each pixel lands where the detour moves its place at the
        clip's time `when`, and its flow is lengthened to reach there by time t: warping back
        along it then finds the pixel."""
        h, w = self.shape
        outside = h * w  # pixels that land off the frame are written to this spare cell
        xs = self.xs + t * self.vectors[:, 0]
        ys = self.ys + t * self.vectors[:, 1]
        vectors = self.packed
        rows = [np.rint(ys).astype(np.int32)]
        if detour is not None:
            dx, dy = detour.shift(xs, ys, when, (w, h))
            xs, ys = xs + dx, ys + dy
            lengthened = self.vectors + np.stack([dx, dy], 1).astype(np.float32) / np.float32(t)
            vectors = lengthened.view(np.float64).ravel()
            top = np.floor(ys).astype(np.int32)
            rows = [top, top + 1]  # a push-in spreads rows apart too: no cracks between them
        left = np.floor(xs).astype(np.int32)
        packed = np.zeros(h * w + 1, np.float64)
        coverage = np.zeros(h * w + 1, np.float32)
        for qy in rows:
            row_start = np.where((qy >= 0) & (qy < h), qy * w, -2 * w)
            for qx in (left, left + 1):  # both neighbours: no cracks where pixels spread apart
                inside = (qx >= 0) & (qx < w) & (row_start >= 0)
                target = np.where(inside, row_start + qx, outside)
                packed[target] = vectors
                coverage[target] = 1.0
        field = packed[:outside].view(np.float32).reshape(h, w, 2)
        return field, coverage[:outside].reshape(h, w)


def fill_holes(field: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Spread known vectors (`coverage` 1) into the holes (0) by push-pull: average the known
    vectors down an image pyramid until every level is covered, then fill each level's holes
    from the coarser one on the way back up. Linear in the pixel count, whatever the hole size."""
    known = coverage > 0
    if known.all() or not known.any():
        return field
    weighted = [field * coverage[..., None]]
    weights = [coverage]
    while min(weights[-1].shape) > 1 and not (weights[-1] > 0).all():
        weighted.append(cv2.pyrDown(weighted[-1]))
        weights.append(cv2.pyrDown(weights[-1]))
    filled = weighted[-1] / np.maximum(weights[-1], 1e-6)[..., None]
    for level in range(len(weights) - 2, 0, -1):
        height, width = weights[level].shape
        coarse = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
        weight = np.minimum(weights[level], 1.0)[..., None]
        own = weighted[level] / np.maximum(weights[level], 1e-6)[..., None]
        filled = own * weight + coarse * (1.0 - weight)
    # The full-size level is known or not, nothing between: the field itself where known.
    filled = cv2.resize(filled, field.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    np.copyto(filled, field, where=known[..., None])
    return filled


class FlowInterpolation:
    """Frames that carry `first` into `last` along the optical flow between them, by way of
    a sample's `detour` where one is given."""

    def __init__(
        self,
        first: np.ndarray,
        last: np.ndarray,
        num_frames: int,
        detour: Detour | None = None,
    ) -> None:
        self.detour = detour
        self.first = np.ascontiguousarray(first)
        self.last = np.ascontiguousarray(last)
        self.sources = four_channels(self.first), four_channels(self.last)
        self.num_frames = num_frames
        self.height, self.width = first.shape[:2]
        self.scale = min(1.0, FLOW_LONG_SIDE / max(self.width, self.height))
        a, b = _small(first, self.scale), _small(last, self.scale)
        flow_ab, flow_ba = estimate_flow(a, b), estimate_flow(b, a)
        self.flow_fwd = consistent_flow(a, b, flow_ab, flow_ba)
        self.flow_bwd = consistent_flow(b, a, flow_ba, flow_ab)
        self.splat_fwd = Splatter(self.flow_fwd)
        self.splat_bwd = Splatter(self.flow_bwd)
        self.blocks = blocks((a.shape[1], a.shape[0]), (self.width, self.height))
        self.times = [timing(index, num_frames) for index in range(num_frames)]
        fastest = max(
            float(np.hypot(flow[..., 0], flow[..., 1]).max())
            for flow in (self.flow_fwd, self.flow_bwd)
        )
        if detour is not None:
            fastest += detour.fastest((a.shape[1], a.shape[0]))
        self.groups = splat_groups(self.times, fastest)

    def fields_at(self, t: float) -> Fields:
        """Both flows splatted to time t, holes filled, specks filtered out (`SPECK_FILTER`),
        where each splat landed, and the motion edges of the first one."""
        field0, cover0 = self.splat_fwd.at(t, self.detour, t)
        field1, cover1 = self.splat_bwd.at(1.0 - t, self.detour, t)
        back0, back1 = (
            cv2.medianBlur(fill_holes(field, cover), SPECK_FILTER)
            for field, cover in ((field0, cover0), (field1, cover1))
        )
        small_height, small_width = cover0.shape
        small = np.empty((6, small_height, small_width), np.float32)
        small[:2], small[2:4] = back0.transpose(2, 0, 1), back1.transpose(2, 0, 1)
        small[4], small[5] = _landed(cover0), _landed(cover1)
        # One resize for all six: stacked, their rows are only widened, never mixed.
        wide = cv2.resize(small.reshape(-1, small_width), (self.width, 6 * small_height))
        return Fields(
            wide.reshape(6, small_height, self.width),
            motion_edges(back0, self.blocks),
        )

    def render(self, t: float, fields: Fields) -> np.ndarray:
        """The in-between image at time t in (0, 1), warped along `fields`."""
        to_full = self.blocks.to_full  # per axis: the small size is rounded
        to_first, to_last = to_full * -t, to_full * -(1.0 - t)
        frame = warp_blend(*self.sources, fields.planes, (*to_first, *to_last), t)
        if fields.edges is not None:
            self._sharpen(frame, t, fields.edges)
        return frame

    def _sharpen(self, frame: np.ndarray, t: float, edges: Edges) -> None:
        """Redo the pixels along motion edges at full size: each takes whichever of its two
        candidate motions makes the two images agree there (the ball's or the background's).

        The small flow, scaled up, blurs an object's motion into a band around it, where the
        two images are then sampled at unrelated places and their blend is a grey halo.
        Pixels where neither candidate agrees (uncovered, or hidden) keep the blend.
        """
        count = len(edges.pixels)
        xs, ys, dx, dy = edges.maps
        on_first = _sampled(self.sources[0], cv2.scaleAdd(dx, -t, xs), cv2.scaleAdd(dy, -t, ys))
        last_xs, last_ys = cv2.scaleAdd(dx, 1.0 - t, xs), cv2.scaleAdd(dy, 1.0 - t, ys)
        if self.detour is not None:
            # The candidates carry the detour's shift over t (Splatter.at); the last image's
            # pixel is the first's moved by the flow alone.
            size = (self.width, self.height)
            shift_x, shift_y = self.detour.shift(*self.detour.unshifted(xs, ys, t, size), t, size)
            last_xs = cv2.scaleAdd(shift_x, -1.0 / t, last_xs)
            last_ys = cv2.scaleAdd(shift_y, -1.0 / t, last_ys)
        on_last = _sampled(self.sources[1], last_xs, last_ys)
        disagreement = cv2.cvtColor(cv2.absdiff(on_first, on_last), cv2.COLOR_RGBA2GRAY)
        misfit_fast, misfit_slow = disagreement.reshape(-1)[: 2 * count].reshape(2, -1)
        agree = np.minimum(misfit_fast, misfit_slow) < EDGE_AGREEMENT
        chosen = np.flatnonzero(agree)
        if not len(chosen):
            return
        chosen += count * (misfit_slow[chosen] < misfit_fast[chosen])
        mixed = cv2.addWeighted(on_first, 1.0 - t, on_last, t, 0.0)
        picked = mixed.view(_RGBA_ITEM).reshape(-1)[chosen].view(np.uint8).reshape(1, -1, 4)
        rgb = three_channels(picked).view(_RGB_ITEM).reshape(-1)
        frame.view(_RGB_ITEM).reshape(-1)[edges.pixels[agree]] = rgb

    def frame_at(self, t: float) -> np.ndarray:
        """The in-between image at time t in [0, 1]."""
        if t <= 0.0:
            return self.first.copy()
        if t >= 1.0:
            return self.last.copy()
        return self.render(t, self.fields_at(t))

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame, in groups that share one splat (`groups`). The next group's splat is
        made on another thread while this group is warped (the kernel lets go of the GIL)."""
        groups = self.groups
        upcoming = _SPLATS.submit(self._fields_between, groups[0])
        for index, group in enumerate(groups):
            fields = upcoming.result()
            if index + 1 < len(groups):
                upcoming = _SPLATS.submit(self._fields_between, groups[index + 1])
            for t in group:
                if 0.0 < t < 1.0 and fields is not None:
                    yield self.render(t, fields)
                else:
                    yield self.frame_at(t)

    def _fields_between(self, group: list[float]) -> Fields | None:
        """The fields at the middle of the group's time span; None for a group resting on
        an end image."""
        middle = (group[0] + group[-1]) / 2
        return self.fields_at(middle) if 0.0 < middle < 1.0 else None


_RIM = np.ones((3, 3), np.uint8)


def _landed(coverage: np.ndarray) -> np.ndarray:
    """Where a splat landed, shrunk by a pixel and softened: the pixels at a hole's rim carry
    the hole's filled-in flow in the full-size warp too, so they are not trusted either."""
    return cv2.GaussianBlur(cv2.erode(coverage, _RIM), (0, 0), 1.0)


class Edges(NamedTuple):
    """The full-size pixels along motion edges, each with two candidate motions (full-size
    pixels, first image to last): the fastest and the slowest of the neighbourhood of its
    small-copy pixel. `maps` is laid out for `_sharpen`'s remaps: every pixel twice, first
    with its fast candidate, then with its slow one, in rows of `EDGE_ROW` (zero-padded)."""

    pixels: np.ndarray  # (N,) int: index of each pixel in the flattened frame
    maps: np.ndarray  # (4, rows, EDGE_ROW) float32: column, row, x motion, y motion


EDGE_STEP = 1.0
"""A motion edge: the flow's speed changes by more than this (small-copy pixels) within
`EDGE_REACH` small pixels."""
EDGE_REACH = 2
"""Not 1: an object's splat spreads its motion up to two small pixels past its outline
(rounding, and its blended rim)."""
EDGE_SHARE = 0.25
"""Edges are sharpened when they cover at most this share of the small copy. An object's
edges are a thin band (a ball of 1 % of the frame, and the filled-in trail behind it: 3-7 %);
a flow whose speed changes everywhere (two unrelated images, even after `consistent_flow`
has smoothed it: 58-72 %) has no edges to sharpen, only cost."""
EDGE_AGREEMENT = 14  # grey level of |first - last| under which the two images agree
EDGE_ROW = 1024
_NEIGHBOURS = np.ones((2 * EDGE_REACH + 1, 2 * EDGE_REACH + 1), np.uint8)
_AROUND = np.argwhere(_NEIGHBOURS) - EDGE_REACH  # (dy, dx) of each neighbour
_RGBA_ITEM, _RGB_ITEM = np.dtype((np.void, 4)), np.dtype((np.void, 3))
"""A pixel seen as one item: gathers and scatters then move items, not rows of channels."""


class Blocks(NamedTuple):
    """The full-size pixels each small-copy pixel covers, per axis, as a nearest-neighbour
    upscale assigns them: rows `row_start[r]` to `row_start[r] + row_count[r]`, and so on."""

    row_start: np.ndarray
    row_count: np.ndarray
    column_start: np.ndarray
    column_count: np.ndarray
    to_full: np.ndarray  # (2,) float32: full-size pixels per small-copy pixel, x and y
    width: int  # of the full-size frame


def blocks(small_size: tuple[int, int], size: tuple[int, int]) -> Blocks:
    """The `Blocks` of a small copy of (width, height) `small_size` in a frame of `size`."""

    def axis(small: int, full: int) -> tuple[np.ndarray, np.ndarray]:
        indices = np.arange(small, dtype=np.int32)[None, :]
        owner = cv2.resize(indices, (full, 1), interpolation=cv2.INTER_NEAREST)[0]
        return np.searchsorted(owner, indices[0]), np.bincount(owner, minlength=small)

    row_start, row_count = axis(small_size[1], size[1])
    column_start, column_count = axis(small_size[0], size[0])
    to_full = np.array([size[0] / small_size[0], size[1] / small_size[1]], np.float32)
    return Blocks(row_start, row_count, column_start, column_count, to_full, size[0])


def motion_edges(field: np.ndarray, covered: Blocks) -> Edges | None:
    """The motion edges of a small flow field, listed at full size (None: none, or too many)."""
    speed = np.hypot(field[..., 0], field[..., 1])
    step = cv2.dilate(speed, _NEIGHBOURS) - cv2.erode(speed, _NEIGHBOURS)
    small_rows, small_columns = np.nonzero(step > EDGE_STEP)
    if not 0 < len(small_rows) <= EDGE_SHARE * speed.size:
        return None
    # The two candidates: the fastest and the slowest vector of the neighbourhood.
    h, w = speed.shape
    around_rows = np.clip(small_rows[:, None] + _AROUND[:, 0], 0, h - 1)
    around_columns = np.clip(small_columns[:, None] + _AROUND[:, 1], 0, w - 1)
    around = speed[around_rows, around_columns]
    picks = np.arange(len(small_rows))
    fastest, slowest = around.argmax(1), around.argmin(1)
    fast = field[around_rows[picks, fastest], around_columns[picks, fastest]]
    slow = field[around_rows[picks, slowest], around_columns[picks, slowest]]
    # Every full-size pixel of each small pixel: its block, counted out row by row.
    heights, widths = covered.row_count[small_rows], covered.column_count[small_columns]
    sizes = heights * widths
    owner = np.repeat(picks, sizes)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    block_rows, block_columns = np.divmod(within, widths[owner])
    rows = covered.row_start[small_rows][owner] + block_rows
    columns = covered.column_start[small_columns][owner] + block_columns
    pixels = rows * covered.width + columns
    count = len(pixels)
    maps = np.zeros((4, -(-2 * count // EDGE_ROW) * EDGE_ROW), np.float32)
    for axis, place in enumerate((columns, rows)):
        maps[axis, :count] = maps[axis, count : 2 * count] = place
        scale = covered.to_full[axis]
        np.take(fast[:, axis] * scale, owner, out=maps[2 + axis, :count])
        np.take(slow[:, axis] * scale, owner, out=maps[2 + axis, count : 2 * count])
    return Edges(pixels, maps.reshape(4, -1, EDGE_ROW))


def _sampled(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of an RGBA `image` at the points (xs, ys), laid out as they are
    (`remap` takes maps under 32767 wide: hence rows of `EDGE_ROW`)."""
    return cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class Fields(NamedTuple):
    """One moment's fields: `warp_blend`'s planes (each image's backward flow in small-copy
    pixels and where its splat landed), and the motion edges of the first one."""

    planes: np.ndarray
    edges: Edges | None


_SPLATS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cinegen-splat")


def splat_groups(times: list[float], fastest: float) -> list[list[float]]:
    """The frame times in runs that can share one splat (`SHARED_SPLAT_LAG`), for a flow whose
    fastest pixel moves `fastest` small-copy pixels from t = 0 to 1. The eased timing is slow
    near both ends, so the runs there are long; in the middle a fast motion gets one splat
    per frame."""
    groups = [[times[0]]]
    for t in times[1:]:
        if (t - groups[-1][0]) * fastest / 2 <= SHARED_SPLAT_LAG:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def timing(index: int, num_frames: int) -> float:
    """Time in [0, 1] for frame `index`: eased in and out, settling on the last image.

    The last HOLD frames show the last image itself: the encoder then refines it over a few
    frames, so the final frame decodes as close to the last image as frame 0 does to the first.
    """
    moving = max(1, num_frames - 1 - HOLD) if num_frames > 2 * HOLD + 2 else max(1, num_frames - 1)
    x = min(1.0, index / moving)
    return x * x * (3.0 - 2.0 * x)
