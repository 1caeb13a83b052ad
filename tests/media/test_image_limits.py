"""Images cost memory by their pixels, not their bytes (issue 31, item 2): what no output can
use is refused from the header, the submit check never decodes at full size, the worker
decodes no larger than its output needs, and only a few decodes run at once."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from cinegen.core import rules
from cinegen.media import decode
from cinegen.media.decode import MediaError, check_image, decode_image, fit_image
from tests.media.images import solid_png
from tests.media.video_checks import textured


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any pixel decode (ImageFile.load) is recorded and fails."""
    calls: list[object] = []

    def load(self: ImageFile.ImageFile):  # noqa: ANN202
        calls.append(self)
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


def test_the_limit_is_four_times_4k() -> None:
    assert decode.MAX_IMAGE_PIXELS == rules.MAX_IMAGE_PIXELS == 4 * 3840 * 2160


@pytest.mark.parametrize("check", [decode_image, check_image])
def test_the_probes_png_is_refused_from_its_header(check, no_decoding: list[object]) -> None:
    data = solid_png(7999, 7999)  # 187 KB; 192 MB of pixels, 2.3 GB to decode before
    with pytest.raises(MediaError, match=r"^The image is too large: 7999x7999 pixels") as error:
        check(data)
    assert "33.2 megapixels" in error.value.message
    assert no_decoding == []


def test_the_largest_useful_image_passes_the_header_check() -> None:
    assert check_image(solid_png(7680, 4320)) == (7680, 4320)


def test_the_submit_check_validates_a_png_without_decoding_it(no_decoding: list[object]) -> None:
    data = _encode(Image.fromarray(textured(64, 48)), "PNG")
    assert check_image(data) == (64, 48)
    with pytest.raises(MediaError, match="could not be decoded"):
        check_image(data[: len(data) * 2 // 3])  # truncated inside the image data
    corrupt = bytearray(data)
    corrupt[60] ^= 0xFF  # a byte of IDAT: its CRC no longer matches
    with pytest.raises(MediaError, match="could not be decoded"):
        check_image(bytes(corrupt))
    assert no_decoding == []


def test_the_submit_check_catches_corrupt_jpeg_and_other_formats() -> None:
    jpeg = _encode(Image.fromarray(textured(256, 256)), "JPEG", quality=90)
    assert check_image(jpeg) == (256, 256)
    with pytest.raises(MediaError, match="could not be decoded"):
        check_image(jpeg[: len(jpeg) // 2])
    webp = _encode(Image.fromarray(textured(64, 48)), "WEBP")
    assert check_image(webp) == (64, 48)
    for garbage in (b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40):
        with pytest.raises(MediaError):
            check_image(garbage)


def test_a_large_jpeg_is_checked_at_an_eighth_of_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile):  # noqa: ANN202
        seen.append(self.size)
        return original(self)

    jpeg = _encode(Image.fromarray(textured(1600, 800)), "JPEG", quality=90)
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    check_image(jpeg)
    assert seen == [(200, 100)]


def test_an_image_near_the_output_size_decodes_exactly_as_before() -> None:
    """Below 2 x REDUCING_GAP times the output in either direction nothing is reduced: the
    fitted pixels are the full decode's, bit for bit."""
    data = _encode(Image.fromarray(textured(1000, 700)), "PNG")
    full = decode_image(data)
    assert np.array_equal(decode_image(data, fit=(320, 180)), full)  # 700 < 4 x 180
    assert np.array_equal(
        fit_image(decode_image(data, fit=(320, 180)), 320, 180), fit_image(full, 320, 180)
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_much_larger_image_is_decoded_reduced_and_fits_the_same(fmt: str) -> None:
    pixels = textured(2400, 1500)
    data = _encode(Image.fromarray(pixels), fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    full = decode_image(data)
    reduced = decode_image(data, fit=(320, 180))
    height, width = reduced.shape[:2]
    assert width >= 2 * 320 and height >= 2 * 180  # still covers twice the output
    assert width * height * 4 <= full.shape[0] * full.shape[1]  # a quarter of the pixels or less
    fitted, reference = fit_image(reduced, 320, 180), fit_image(full, 320, 180)
    assert fitted.shape == reference.shape == (180, 320, 3)
    assert np.abs(fitted.astype(int) - reference.astype(int)).mean() < 2.0


def test_reduction_keeps_exif_orientation() -> None:
    pixels = np.zeros((1000, 2000, 3), np.uint8)
    pixels[:, :1000] = (255, 0, 0)  # left half red; displayed after a 90° turn: top half
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    upright = decode_image(data, fit=(90, 160))  # a portrait output
    assert upright.shape[0] > upright.shape[1]
    assert upright.shape[:2] != decode_image(data).shape[:2]  # it was reduced
    half = upright.shape[0] // 2
    assert upright[: half - 4, :, 0].mean() > 200 and upright[half + 4 :, :, 0].mean() < 60


def test_reduction_factor() -> None:
    assert decode.reduction_factor((7680, 4320), (1280, 720)) == 3
    assert decode.reduction_factor((3840, 2160), (1280, 720)) == 1  # 3x: not reduced
    assert decode.reduction_factor((7680, 4320), (3840, 2160)) == 1
    assert decode.reduction_factor((5120, 5120), (1280, 720)) == 2


def test_decodes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    original = decode._to_rgb

    def slow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return original(*args, **kwargs)

    monkeypatch.setattr(decode, "_to_rgb", slow)
    data = _encode(Image.fromarray(textured(32, 32)), "PNG")
    threads = [threading.Thread(target=decode_image, args=(data,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == decode.MAX_CONCURRENT_DECODES == 2
