"""RGB frames to NV12 video frames for the H.264 encoder (BT.601, limited range)."""

from __future__ import annotations

import av
import cv2
import numpy as np

# OpenCV's YCrCb is full range; H.264 here is limited range (luma 16-235, chroma 16-240).
_LIMITED_CHROMA = np.clip(np.round((np.arange(256) - 128) * (224 / 255) + 128), 0, 255).astype(
    np.uint8
)
_LIMITED_LUMA = np.round(16 + np.arange(256) * (219 / 255)).astype(np.uint8)


class Nv12Converter:
    """RGB → NV12 (BT.601 limited range, as swscale does), several times faster than swscale.

    Chroma comes from the half-size image: the 2×2-averaged frame (OpenCV's own I420 chroma
    picks one pixel per block, which aliases and costs ~3 dB), or the frame itself when the
    clip comes at half size. It is converted with OpenCV's integer YCrCb path, scaled to
    limited range by a lookup table and interleaved as NV12 wants. Luma comes from OpenCV's
    I420 conversion of a full-size frame (for a clip's first and last frames, from
    `_luma_matching_colours`), or is a smaller frame's YCrCb luma scaled up
    (bicubic: a 720p photo's 1080p frame, worked at 1280×720, decodes 1.2 dB closer to it than
    with bilinear).
    A frame at another size below the video's (a 1080p video worked at 1280×720) is turned
    into YCrCb at its own size, whose planes are then scaled: the luma up to the video's
    size, the chroma to half of it. No full-size RGB frame is made.
    The intermediate images live in buffers kept for the whole clip: fresh megabyte-sized
    arrays per frame cost more in page faults than the conversion.
    NV12 rather than I420 also matters for determinism: x264's SIMD I420→NV12 interleave can
    read past the end of the last chroma row (into uninitialised padding) when the chroma
    width is not a multiple of 32.
    """

    def __init__(self, width: int, height: int, frame_size: tuple[int, int]) -> None:
        self.width, self.height = width, height
        self.full_size = frame_size == (width, height)
        self.half = np.empty((height // 2, width // 2, 3), np.uint8)
        self.ycrcb = np.empty_like(self.half)
        self.i420 = np.empty((height * 3 // 2, width), np.uint8) if self.full_size else None
        other_size = not self.full_size and frame_size != (width // 2, height // 2)
        self.own_ycrcb = np.empty((*frame_size[::-1], 3), np.uint8) if other_size else None

    def __call__(self, rgb: np.ndarray, *, match_colours: bool = False) -> av.VideoFrame:
        width, height = self.width, self.height
        frame = av.VideoFrame(width, height, "nv12")
        # The planes' rows may be padded: write into views of them, not into copies.
        # The ignores: a plane is a buffer, but NumPy's stubs for Python < 3.12 accept only the
        # buffer types they list (bytes, memoryview, ndarray, ...), not the buffer protocol.
        luma = np.frombuffer(frame.planes[0], np.uint8).reshape(height, -1)[:, :width]  # type: ignore[call-overload]
        chroma = np.frombuffer(frame.planes[1], np.uint8).reshape(height // 2, -1)[:, :width]  # type: ignore[call-overload]
        pairs = chroma.reshape(height // 2, width // 2, 2)
        if self.full_size:
            cv2.resize(rgb, (width // 2, height // 2), dst=self.half, interpolation=cv2.INTER_AREA)
            cv2.cvtColor(self.half, cv2.COLOR_RGB2YCrCb, dst=self.ycrcb)
            self._write_chroma(pairs)
            if match_colours:
                _luma_matching_colours(rgb, pairs, luma)
            else:
                assert self.i420 is not None  # made for full-size frames
                cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420, dst=self.i420)
                luma[:] = self.i420[:height]
            return frame
        own = self.ycrcb if self.own_ycrcb is None else self.own_ycrcb
        cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb, dst=own)
        if own is not self.ycrcb:
            shrink = own.shape[1] > width // 2
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            cv2.resize(own, (width // 2, height // 2), dst=self.ycrcb, interpolation=interpolation)
        small_luma = cv2.LUT(cv2.extractChannel(own, 0), _LIMITED_LUMA)
        cv2.resize(small_luma, (width, height), dst=luma, interpolation=cv2.INTER_CUBIC)
        self._write_chroma(pairs)
        return frame

    def _write_chroma(self, pairs: np.ndarray) -> None:
        """NV12's interleaved Cb Cr, limited range, from the half-size YCrCb image."""
        cr, cb = cv2.extractChannel(self.ycrcb, 1), cv2.extractChannel(self.ycrcb, 2)
        cv2.merge([cv2.LUT(cb, _LIMITED_CHROMA), cv2.LUT(cr, _LIMITED_CHROMA)], dst=pairs)


# A decoder rebuilds R, G and B from one luma value and the 2x2 block's shared chroma: the
# chroma adds 1.402 Cr to R, -0.344 Cb - 0.714 Cr to G and 1.772 Cb to B (BT.601). The luma
# that brings the three closest to the frame's own (least squares) is the mean of R, G and B
# less the mean of those additions, a value per block: (1.772 - 0.344) Cb + (1.402 - 0.714)
# Cr, over 3.
_CB_ADDED = 1.772 - 0.344136
_CR_ADDED = 1.402 - 0.714136
_LIMITED_SCALE = 219 / 255  # full-range RGB to limited-range luma steps
_CHROMA_STEP = 255 / 224  # one limited-range chroma step in full-range units
_MEAN_RGB = np.array([[_LIMITED_SCALE / 3] * 3 + [16.0]], np.float32)
_CHROMA_SHARE = np.array(
    [[_CB_ADDED, _CR_ADDED, -128 * (_CB_ADDED + _CR_ADDED)]], np.float32
) * np.float32(_CHROMA_STEP * _LIMITED_SCALE / 3)  # applied to NV12's (Cb, Cr) pairs


def _luma_matching_colours(rgb: np.ndarray, pairs: np.ndarray, luma: np.ndarray) -> None:
    """Luma that makes up for 4:2:0, given the chroma already chosen (`pairs`, NV12 Cb Cr).

    Where colours change within a 2x2 block the shared chroma is wrong for every pixel of it,
    and BT.601's own luma leaves that error in: the bench's photo of saturated shapes decodes
    to 34.9 dB against itself even without quantising. This luma takes out what one value
    per pixel can (+0.6 dB there after x264; unchanged where a block is one colour), in the
    way libwebp's "sharp YUV" does. It costs several times the plain conversion, so it is
    used for the frames that must match an input image, a clip's first and last, when they
    come at the video's size.
    """
    height, width = luma.shape
    share = cv2.transform(pairs.astype(np.float32), _CHROMA_SHARE)
    per_pixel = cv2.resize(
        np.round(share).astype(np.int16), (width, height), interpolation=cv2.INTER_NEAREST
    )
    cv2.subtract(cv2.transform(rgb, _MEAN_RGB), per_pixel, dst=luma, dtype=cv2.CV_8U)
