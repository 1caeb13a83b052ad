"""An invisible watermark in the pixels: 64 bits that survive re-encoding, scaling, cropping,
cuts and brightness changes.

No maintained library fits offline (VideoSeal downloads its weights at run time;
`invisible-watermark` is image-only and not robust to scaling), so this is a classical
spread-spectrum scheme, documented here.

Method
------
- **Spread spectrum** (Cox, Kilian, Leighton, Shamoon, "Secure spread spectrum watermarking
  for multimedia", IEEE TIP 1997): each bit is spread over many pseudo-random ±1 chips; the
  detector correlates with the known chips (a matched filter).
- **Tiling for translation invariance** (Kalker, Depovere, Haitsma, Maes, "A video
  watermarking system for broadcast monitoring", SPIE 1999, "JAWS"): one square tile of
  32×32 chips is repeated over the whole frame, and the same tile in every frame. The
  detector folds the picture into one tile (sums all tiles) and finds the tile's offset by a
  cyclic cross-correlation (FFT) with the tile's synchronisation chips; a crop only moves that
  offset. Repetition over time means a cut (any 2 s out of the middle) changes nothing but
  how many frames are averaged.
- **Scale**: the tile is defined in normalised coordinates: a chip is 1/64 of the frame's
  short side (11.25 px at 720p). Any uniform scaling therefore leaves the pattern where it
  was relative to the frame; only a crop changes the ratio, and the detector searches the
  zoom factors `ZOOMS` (a crop that keeps 75 % to 100 % of the short side, in steps small
  enough that a chip stays aligned across the frame).
- **Low frequency, luma only**: chips are smooth (bilinear between chip centres), so the
  mark lives where H.264 at CRF 28 and a 50 % downscale keep it; the same small integer is
  added to R, G and B (a luma change, no colour shift). The detector whitens the luma (a
  high-pass, then clipping so that edges do not dominate), which also makes it blind to a
  brightness or contrast change.

Of the tile's 1024 chips, 384 are synchronisation chips (fixed signs) and 640 carry the
payload: 10 chips per bit, each with a pseudo-random sign, at pseudo-random places (repetition
with soft combining: each bit's chips are averaged over every tile and frame).

Strength: `AMPLITUDE` grey levels at a chip centre, rounded to integers: the change is at
most 2 levels anywhere (also in a flat area), and PSNR against the unmarked frames is about
45.6 dB (bench/watermark.py measures it; the issue asks ≥ 45).

Cost: marking is two saturating adds per frame with precomputed planes, about 2 % of a 720p
preview job. The encoder then has to code the mark, which is most of its cost: a mark that
stays still while the picture pans is coded again in every P-frame (bench/watermark.py
measures both, and what weaker still marks cost and lose).

Threshold (false positives)
---------------------------
The detection statistic is the synchronisation correlation at a shift, standardised over all
shifts of that zoom: z = (c − mean c) / std c. Under H0 (no mark) c is a weighted sum of
thousands of weakly dependent whitened, clipped pixels, so z ~ N(0, 1). The detector tests
every cyclic shift of the 128×128 canonical tile (16 384) at each of the `len(ZOOMS)` = 51
zooms: `HYPOTHESES` = 835 584. Bonferroni: P(any z ≥ t | H0) ≤ 835 584 · Q(t), Q the
standard normal tail. For a false-positive rate below 1e-6 per video, Q(t) ≤ 1.2e-12:
t = 7.0 gives Q = 1.28e-12 (1.07e-6 per video, just over); `THRESHOLD` = 7.05 gives
Q = 8.9e-13, so 835 584 · 8.9e-13 = 7.5e-7 < 1e-6.

Once a peak is found, z is also computed against the spread of the surface with the mark read
there taken out (`_residual_z`): the mark's own correlation sidelobes otherwise cap z near
√384 ≈ 20 however strong the mark is. Under H0 taking out one fitted pattern changes the
spread by a negligible amount (one fitted amplitude and 64 signs against 16 384 pixels), so the threshold holds;
bench/watermark.py reports the largest z over 1 000 unmarked videos (expected ≈ 5).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache

import av
import cv2
import numpy as np

from cinegen.core.errors import MediaError
from cinegen.media.clip import Clip

PAYLOAD_BITS = 64
INSTALLATION_BITS = 24
"""The payload's top 24 bits: the installation id; the low 40: a hash of the sample."""
SAMPLE_BITS = PAYLOAD_BITS - INSTALLATION_BITS

CHIPS_PER_SIDE = 64
"""Chips along the frame's short side (a chip is 11.25 px at 720p, 5.6 px at 360p)."""
TILE_CHIPS = 32
"""The tile is 32×32 chips: it repeats twice along the short side."""
CHIP_PX = 4
"""Canonical pixels per chip: the detector works at a short side of 256 pixels."""
TILE_PX = TILE_CHIPS * CHIP_PX
CANONICAL_SIDE = CHIPS_PER_SIDE * CHIP_PX
SYNC_CHIPS = 384
CHIPS_PER_BIT = (TILE_CHIPS * TILE_CHIPS - SYNC_CHIPS) // PAYLOAD_BITS
AMPLITUDE = 1.8
"""Grey levels added at a chip's centre; rounded, the change is never more than 2 levels."""

ZOOMS = tuple(round(1.0 - 0.005 * i, 3) for i in range(51))
"""Relative sizes of the picture's short side to the marked frame's (a crop that keeps 75 %
to 100 % of it). Steps of 0.5 %: at most 0.25 % off, a chip drifts by under 1.2 canonical
pixels across a 16:9 frame."""
HYPOTHESES = len(ZOOMS) * TILE_PX * TILE_PX
THRESHOLD = 7.05
"""z for a false-positive rate below 1e-6 per video (module docstring)."""

MAX_FRAMES = 96
"""Frames the detector reads at most (evenly spread over the video)."""
_CLIP_LEVEL = 0.7  # whitened luma is clipped to ±this (grey levels): edges must not dominate
_BLUR_SIGMA = 4.0  # the whitening high-pass: picture minus a Gaussian blur of this sigma
_KEY = b"cinegen watermark v1"
_EIGHT_BIT_YUV = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"}
)


@dataclass(frozen=True)
class WatermarkReading:
    """What the detector read from a video."""

    found: bool
    payload: int | None  # the 64 bits, when found
    score: float  # the synchronisation z (found when ≥ THRESHOLD)
    bit_confidence: float  # mean probability that a bit is right (0.5: a guess, 1: certain)
    threshold: float = THRESHOLD
    zoom: float = 1.0  # the detected size of the picture relative to the marked one
    frames: int = 0  # frames averaged
    bits: tuple[int, ...] = field(default=(), repr=False)  # the raw decision, found or not

    @property
    def installation_id(self) -> int | None:
        """The 24-bit id of the installation that made the video (when found)."""
        return None if self.payload is None else self.payload >> SAMPLE_BITS


@dataclass(frozen=True)
class _Layout:
    sync_signs: np.ndarray  # (32, 32) float32: ±1 on sync chips, 0 on data chips
    data_index: np.ndarray  # (64, 8) int: flat chip index of each bit's chips
    data_signs: np.ndarray  # (64, 8) float32: each chip's spreading sign


@lru_cache(maxsize=1)
def _layout() -> _Layout:
    """The tile's fixed chip layout, from the key (the same in every cinegen)."""
    seed = int.from_bytes(hashlib.sha256(_KEY).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    order = rng.permutation(TILE_CHIPS * TILE_CHIPS)
    sync = np.zeros(TILE_CHIPS * TILE_CHIPS, np.float32)
    sync[order[:SYNC_CHIPS]] = rng.choice([-1.0, 1.0], SYNC_CHIPS)
    data_index = order[SYNC_CHIPS:].reshape(PAYLOAD_BITS, CHIPS_PER_BIT)
    data_signs = rng.choice([-1.0, 1.0], data_index.shape).astype(np.float32)
    return _Layout(sync.reshape(TILE_CHIPS, TILE_CHIPS), data_index, data_signs)


def payload_bits(payload: int) -> np.ndarray:
    """The payload as ±1, most significant bit first."""
    if not 0 <= payload < 1 << PAYLOAD_BITS:
        raise ValueError(f"a watermark payload is {PAYLOAD_BITS} bits, got {payload}")
    bits = [(payload >> (PAYLOAD_BITS - 1 - k)) & 1 for k in range(PAYLOAD_BITS)]
    return np.array(bits, np.float32) * 2 - 1


def chip_tile(payload: int) -> np.ndarray:
    """The tile's 32×32 chips (±1) for `payload`: sync chips, then the payload's."""
    layout = _layout()
    tile = layout.sync_signs.copy().reshape(-1)
    tile[layout.data_index] = layout.data_signs * payload_bits(payload)[:, None]
    return tile.reshape(TILE_CHIPS, TILE_CHIPS)


def _smooth(chips: np.ndarray, unit: float, width: int, height: int) -> np.ndarray:
    """Chips (a grid that repeats the tile) made a smooth picture of `width`×`height`, one
    chip per `unit` pixels, bilinear between chip centres."""
    rows = math.ceil(height / unit) + 1
    cols = math.ceil(width / unit) + 1
    grid = np.tile(chips, (rows // TILE_CHIPS + 1, cols // TILE_CHIPS + 1))[:rows, :cols]
    size = (round(cols * unit), round(rows * unit))
    return cv2.resize(grid, size, interpolation=cv2.INTER_LINEAR)[:height, :width]


def pattern(
    payload: int,
    width: int,
    height: int,
    *,
    amplitude: float = AMPLITUDE,
    chips_per_side: int = CHIPS_PER_SIDE,
) -> np.ndarray:
    """The integer luma change (H×W int16) that marks a `width`×`height` frame. (Another
    amplitude or chip size gives a mark the detector is not tuned for: bench/watermark.py
    uses them to show what any still mark costs the encoder.)"""
    unit = min(width, height) / chips_per_side
    smooth = _smooth(chip_tile(payload), unit, width, height)
    return np.rint(amplitude * smooth).astype(np.int16)


class Marker:
    """Adds the pattern for one payload and frame size to RGB frames (cheap per frame: two
    saturating OpenCV passes with precomputed planes)."""

    def __init__(
        self,
        payload: int,
        width: int,
        height: int,
        *,
        amplitude: float = AMPLITUDE,
        chips_per_side: int = CHIPS_PER_SIDE,
    ) -> None:
        delta = pattern(payload, width, height, amplitude=amplitude, chips_per_side=chips_per_side)
        up = np.clip(delta, 0, 255).astype(np.uint8)
        down = np.clip(-delta, 0, 255).astype(np.uint8)
        self._up = np.ascontiguousarray(np.repeat(up[:, :, None], 3, axis=2))
        self._down = np.ascontiguousarray(np.repeat(down[:, :, None], 3, axis=2))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """A new, marked frame (the engine's frame is left as it was)."""
        marked = cv2.add(frame, self._up)
        return cv2.subtract(marked, self._down, dst=marked)


def watermarked(clip: Clip, payload: int) -> Clip:
    """`clip` with every frame marked, lazily (frames are marked as the encoder pulls them)."""
    width, height = clip.frame_size
    marker = Marker(payload, width, height)
    return replace(clip, frames=_marked_frames(clip.frames, marker))


def _marked_frames(frames: Iterator[np.ndarray], marker: Marker) -> Iterator[np.ndarray]:
    try:
        for frame in frames:
            yield marker(frame)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


# --------------------------------------------------------------------------- detection


def _whitened(luma: np.ndarray) -> np.ndarray:
    """The luma at the canonical size (short side 256), high-passed and clipped."""
    height, width = luma.shape
    scale = CANONICAL_SIDE / min(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(luma, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    high = small - cv2.GaussianBlur(small, (0, 0), _BLUR_SIGMA)
    return np.clip(high, -_CLIP_LEVEL, _CLIP_LEVEL, out=high)


def _fold(image: np.ndarray, zoom: float) -> np.ndarray:
    """`image` rescaled by `zoom` (back to the marked frame's scale) and folded into one
    tile: the mean of all its tile-sized pieces."""
    height, width = image.shape
    size = (max(1, round(width * zoom)), max(1, round(height * zoom)))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) if zoom != 1.0 else image
    rows = -(-scaled.shape[0] // TILE_PX) * TILE_PX
    cols = -(-scaled.shape[1] // TILE_PX) * TILE_PX
    padded = np.zeros((rows, cols), np.float32)
    padded[: scaled.shape[0], : scaled.shape[1]] = scaled
    count = np.zeros((rows, cols), np.float32)
    count[: scaled.shape[0], : scaled.shape[1]] = 1.0
    shape = (rows // TILE_PX, TILE_PX, cols // TILE_PX, TILE_PX)
    total = padded.reshape(shape).sum(axis=(0, 2))
    seen = count.reshape(shape).sum(axis=(0, 2))
    return total / np.maximum(seen, 1.0)


@lru_cache(maxsize=1)
def _references() -> tuple[np.ndarray, np.ndarray]:
    """FFTs of the sync pattern and of one chip's shape, at canonical scale, whitened the
    way the picture is (the matched filters)."""
    sync = _canonical(_layout().sync_signs)
    one = np.zeros((TILE_CHIPS, TILE_CHIPS), np.float32)
    one[0, 0] = 1.0
    chip = _canonical(one)
    return np.fft.rfft2(sync), np.fft.rfft2(chip)


def _canonical(chips: np.ndarray) -> np.ndarray:
    """A chip tile as the canonical, cyclic 128×128 picture, whitened like the frames."""
    big = _smooth(np.tile(chips, (3, 3)), CHIP_PX, 3 * TILE_PX, 3 * TILE_PX)
    high = big - cv2.GaussianBlur(big, (0, 0), _BLUR_SIGMA)
    return np.ascontiguousarray(high[TILE_PX : 2 * TILE_PX, TILE_PX : 2 * TILE_PX])


@dataclass(frozen=True)
class _Peak:
    z: float
    zoom: float
    shift: tuple[int, int]
    tile: np.ndarray  # the folded tile at that zoom


def _best_peak(mean_image: np.ndarray) -> _Peak:
    sync_fft, _chip = _references()
    best: _Peak | None = None
    for zoom in ZOOMS:
        tile = _fold(mean_image, zoom)
        surface = np.fft.irfft2(np.fft.rfft2(tile) * np.conj(sync_fft), s=tile.shape)
        spread = float(surface.std())
        if spread <= 0.0:
            continue
        z = (surface - surface.mean()) / spread
        index = int(np.argmax(z))
        peak = float(z.flat[index])
        if best is None or peak > best.z:
            shift = divmod(index, TILE_PX)
            best = _Peak(peak, zoom, (int(shift[0]), int(shift[1])), tile)
    if best is None:
        return _Peak(0.0, 1.0, (0, 0), np.zeros((TILE_PX, TILE_PX), np.float32))
    return best


def _chip_values(peak: _Peak) -> np.ndarray:
    """Each chip's matched-filter value (32×32) at the peak's shift."""
    _sync, chip_fft = _references()
    surface = np.fft.irfft2(np.fft.rfft2(peak.tile) * np.conj(chip_fft), s=peak.tile.shape)
    rolled = np.roll(surface, (-peak.shift[0], -peak.shift[1]), axis=(0, 1))
    return rolled[::CHIP_PX, ::CHIP_PX]


def _residual_z(peak: _Peak, bits: tuple[int, ...]) -> float:
    """The peak's correlation over the spread of the correlation surface once the mark read
    at the peak is taken out of the tile: the surface of the mark itself (its sidelobes)
    would otherwise cap z near sqrt(SYNC_CHIPS) however strong the mark is."""
    mark = np.roll(_canonical(chip_tile(_payload_of(bits))), peak.shift, axis=(0, 1))
    gain = float(np.vdot(peak.tile, mark) / max(float(np.vdot(mark, mark)), 1e-12))
    residual = peak.tile - max(gain, 0.0) * mark
    sync_fft, _chip = _references()
    surface = np.fft.irfft2(np.fft.rfft2(residual) * np.conj(sync_fft), s=residual.shape)
    raw = np.fft.irfft2(np.fft.rfft2(peak.tile) * np.conj(sync_fft), s=residual.shape)
    spread = float(surface.std())
    if spread <= 0.0:
        return 0.0
    return float((raw[peak.shift] - surface.mean()) / spread)


def _decode(peak: _Peak) -> tuple[int, float, tuple[int, ...]]:
    """The payload, the mean bit confidence, and the bits, read at the peak."""
    layout = _layout()
    values = _chip_values(peak).reshape(-1)
    sync_mask = layout.sync_signs.reshape(-1) != 0
    sync = values[sync_mask] * layout.sync_signs.reshape(-1)[sync_mask]
    signal = float(sync.mean())
    noise = float(sync.std()) or 1e-9
    soft = (values[layout.data_index] * layout.data_signs).mean(axis=1)
    bits = tuple(int(s > 0) for s in soft)
    noise_bit = noise / math.sqrt(CHIPS_PER_BIT)
    llr = np.clip(2.0 * max(signal, 0.0) * np.abs(soft) / noise_bit**2, 0.0, 50.0)
    confidence = float(np.mean(1.0 / (1.0 + np.exp(-llr))))
    return _payload_of(bits), confidence, bits


def _payload_of(bits: tuple[int, ...]) -> int:
    """The bits (most significant first) as one integer, the inverse of `payload_bits`."""
    payload = 0
    for bit in bits:
        payload = payload << 1 | bit
    return payload


def read_frames(frames: Iterator[np.ndarray]) -> WatermarkReading:
    """Detect the mark in luma frames (H×W uint8 or float)."""
    total: np.ndarray | None = None
    count = 0
    for luma in frames:
        white = _whitened(np.asarray(luma, np.float32))
        if total is not None and total.shape != white.shape:
            continue
        total = white if total is None else total + white
        count += 1
    if total is None:
        return WatermarkReading(False, None, 0.0, 0.5)
    peak = _best_peak(total / count)
    payload, confidence, bits = _decode(peak)
    score = max(peak.z, _residual_z(peak, bits))
    found = score >= THRESHOLD
    return WatermarkReading(
        found=found,
        payload=payload if found else None,
        score=score,
        bit_confidence=confidence,
        zoom=peak.zoom,
        frames=count,
        bits=bits,
    )


def detect_watermark(path: str) -> WatermarkReading:
    """Read the watermark of the video at `path` (MediaError if it cannot be decoded)."""
    return read_frames(_lumas(path))


def _lumas(path: str) -> Iterator[np.ndarray]:
    """Up to MAX_FRAMES luma planes, evenly spread over the video."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MediaError("The file has no video stream.")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            total = stream.frames or 0
            step = max(1, total // MAX_FRAMES) if total else 1
            for index, frame in enumerate(container.decode(stream)):
                if index % step == 0:
                    yield _luma(frame)
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"The video could not be decoded: {exc}") from exc


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's Y plane (8-bit YUV, no conversion), or its grey (any other format)."""
    if frame.format.name in _EIGHT_BIT_YUV:
        plane = frame.planes[0]
        flat = np.frombuffer(plane, np.uint8)  # type: ignore[call-overload]
        rows = flat[: plane.height * plane.line_size].reshape(plane.height, plane.line_size)
        return rows[:, : plane.width]
    return frame.to_ndarray(format="gray")
