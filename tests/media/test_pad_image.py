"""`pad_image` (Vertex's `resizeMode: pad`): the whole image, scaled to fit and centred on the
fill colour; `fit_image` (`crop`) for contrast."""

from __future__ import annotations

import cv2
import numpy as np

from cinegen.media.decode import fit_image, pad_image


def ramp(width: int, height: int) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = np.linspace(10, 250, width, dtype=np.float64)[None, :].astype(np.uint8)
    img[..., 1] = np.linspace(10, 250, height, dtype=np.float64)[:, None].astype(np.uint8)
    img[..., 2] = 77
    return img


def test_a_square_into_landscape_is_pillarboxed() -> None:
    src = ramp(100, 100)
    out = pad_image(src, 160, 90)
    assert out.shape == (90, 160, 3) and out.dtype == np.uint8
    left = (160 - 90) // 2
    assert not out[:, :left].any() and not out[:, left + 90 :].any(), "black bars"
    expected = cv2.resize(src, (90, 90), interpolation=cv2.INTER_AREA)
    assert np.array_equal(out[:, left : left + 90], expected), "the whole image, scaled"


def test_a_landscape_into_portrait_is_letterboxed_in_the_fill_colour() -> None:
    src = ramp(320, 180)
    out = pad_image(src, 90, 160, fill=(1, 2, 3))
    image_h = round(180 * 90 / 320)  # 51 rows of image, centred: 54 rows of fill above
    top = (160 - image_h) // 2
    assert (image_h, top) == (51, 54)
    assert (out[:top] == (1, 2, 3)).all() and (out[top + image_h :] == (1, 2, 3)).all()
    expected = cv2.resize(src, (90, image_h), interpolation=cv2.INTER_AREA)
    assert np.array_equal(out[top : top + image_h], expected)


def test_the_same_size_is_a_copy_and_the_same_aspect_has_no_bars() -> None:
    src = ramp(64, 36)
    same = pad_image(src, 64, 36)
    assert np.array_equal(same, src) and same is not src
    bigger = pad_image(src, 128, 72)
    assert np.array_equal(bigger, fit_image(src, 128, 72)), "pad and crop agree on one aspect"


def test_crop_fills_where_pad_keeps_everything() -> None:
    src = ramp(100, 100)
    assert fit_image(src, 160, 90)[:, :10].min() > 0, "crop: no bars"
    assert not pad_image(src, 160, 90)[:, :10].any()
