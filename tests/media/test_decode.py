"""Decoding client images and videos: orientation, alpha, size checks, user-readable errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cinegen.media import decode
from cinegen.media.decode import (
    MediaError,
    decode_image,
    fit_image,
    iter_video_frames,
    probe_video,
    read_audio,
)
from cinegen.media.encode import encode_clip
from tests.media.video_checks import clip_of, textured


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_decodes_common_formats_to_rgb(fmt: str) -> None:
    pixels = textured(64, 48)
    data = _encode(Image.fromarray(pixels), fmt, **({"quality": 95} if fmt != "PNG" else {}))
    image = decode_image(data)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - pixels).mean() < 6


def test_exif_orientation_is_applied() -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90° clockwise turn
    data = _encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    image = decode_image(data)
    assert image.shape == (40, 20, 3)
    assert image[:20, :, 0].mean() > 200 and image[20:, :, 0].mean() < 60  # red on top now


def test_alpha_is_composited_on_the_background() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, 5:, 3] = 255  # right half opaque red, left half transparent
    data = _encode(Image.fromarray(rgba, "RGBA"), "PNG")
    on_black = decode_image(data)
    assert on_black[:, :5].max() == 0 and (on_black[:, 5:, 0] == 255).all()
    on_white = decode_image(data, background=(255, 255, 255))
    assert (on_white[:, :5] == 255).all()


def test_palette_and_grey_images() -> None:
    grey = Image.fromarray(np.full((8, 8), 128, np.uint8), "L")
    assert decode_image(_encode(grey, "PNG"))[0, 0].tolist() == [128, 128, 128]
    palette = Image.fromarray(textured(16, 16)).convert("P")
    assert decode_image(_encode(palette, "PNG")).shape == (16, 16, 3)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_garbage_is_a_media_error(data: bytes) -> None:
    with pytest.raises(MediaError, match="^The image could not be decoded"):
        decode_image(data)


def test_truncated_image_is_a_media_error() -> None:
    data = _encode(Image.fromarray(textured(64, 64)), "PNG")
    with pytest.raises(MediaError, match="could not be decoded"):
        decode_image(data[: len(data) // 2])


def test_decompression_bombs_are_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(Image.fromarray(np.zeros((100, 100, 3), np.uint8)), "PNG")
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 5_000)
    with pytest.raises(MediaError, match="megapixels"):
        decode_image(data)


def test_a_real_bomb_header_is_refused() -> None:
    # 30000×30000 of zeros compresses to a few hundred KB but would need 2.7 GB decoded.
    image = Image.new("1", (30000, 30000))
    data = _encode(image, "PNG", optimize=False)
    with pytest.raises(MediaError):
        decode_image(data)


def test_fit_image_covers_and_centre_crops() -> None:
    image = np.zeros((100, 400, 3), np.uint8)
    image[:, 150:250] = 255  # a white band in the middle
    fitted = fit_image(image, 160, 90)
    assert fitted.shape == (90, 160, 3)
    assert fitted[:, 80].min() == 255  # the middle survives the crop
    assert fitted[:, 0].max() == 0
    assert fit_image(textured(50, 30), 200, 100).shape == (100, 200, 3)  # upscale too
    same = textured(64, 36)
    assert fit_image(same, 64, 36) is not same and np.array_equal(fit_image(same, 64, 36), same)


def test_probe_and_read_back_a_video(tmp_path) -> None:
    frames = [textured(96, 64, seed=i) for i in range(12)]
    audio = np.full((24000, 2), 0.1, np.float32)
    path = str(tmp_path / "v.mp4")
    encode_clip(clip_of(frames, audio), path)
    info = probe_video(path)
    assert (info.width, info.height, info.num_frames, info.fps) == (96, 64, 12, 24.0)
    assert info.duration_seconds == pytest.approx(0.5) and info.has_audio
    decoded = list(iter_video_frames(path))
    assert len(decoded) == 12 and decoded[0].shape == (64, 96, 3)
    sound = read_audio(path)
    assert sound is not None and sound.dtype == np.float32 and sound.shape[1] == 2
    assert abs(len(sound) - 24000) <= 2048


def test_silent_video_has_no_audio(tmp_path) -> None:
    path = str(tmp_path / "silent.mp4")
    encode_clip(clip_of([textured(32, 32)] * 3), path)
    assert read_audio(path) is None
    assert not probe_video(path).has_audio


def test_garbage_video_is_a_media_error(tmp_path) -> None:
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"\0\0\0\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(MediaError, match="^The video could not be decoded"):
        probe_video(str(path))
    with pytest.raises(MediaError, match="^The video could not be decoded"):
        list(iter_video_frames(str(path)))
    with pytest.raises(MediaError):
        probe_video(str(tmp_path / "missing.mp4"))
