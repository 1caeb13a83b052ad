"""Stills of a video: a thumbnail (the first frame) and a spritesheet (a grid of frames).

They are the OpenAI `download_content` variants besides the MP4. The video comes as a
seekable binary stream (a blob), which each pass reads from the start.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any, BinaryIO

import av
from PIL import Image

from cinegen.core.errors import MediaError

SPRITE_TILES = 25  # at most, evenly spread over the clip
SPRITE_COLUMNS = 5
SPRITE_TILE_WIDTH = 256


def _open(video: BinaryIO) -> Any:
    video.seek(0)
    return av.open(video)


def _frame_count(video: BinaryIO) -> int:
    with _open(video) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return stream.frames
        return sum(1 for packet in container.demux(stream) if packet.size)


def _tiles(video: BinaryIO, picks: list[int], size: tuple[int, int]) -> list[Image.Image]:
    """The frames at `picks` (sorted indices), shrunk to `size` as they stream past."""
    wanted = {index: picks.count(index) for index in picks}
    tiles: list[Image.Image] = []
    with _open(video) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                tile = frame.to_image().resize(size, Image.Resampling.LANCZOS)
                tiles.extend([tile] * wanted[index])
            if len(tiles) >= len(picks):
                break
    return tiles


def _first_frame(video: BinaryIO) -> Image.Image:
    with _open(video) as container:
        for frame in container.decode(video=0):
            return frame.to_image()
    raise MediaError("the video has no frames")


def thumbnail(video: BinaryIO) -> bytes:
    """The first frame, full size, as WebP."""
    out = io.BytesIO()
    _first_frame(video).save(out, format="WEBP", quality=85)
    return out.getvalue()


def spritesheet(video: BinaryIO) -> bytes:
    """Up to 25 evenly spaced frames in a 5-column grid of 256 px wide tiles, as JPEG."""
    total = _frame_count(video)
    if total <= 0:
        raise MediaError("the video has no frames")
    count = min(SPRITE_TILES, total)
    picks = [round(i * (total - 1) / max(count - 1, 1)) for i in range(count)]
    first = _first_frame(video)
    width = SPRITE_TILE_WIDTH
    height = max(1, round(width * first.height / first.width))
    tiles = _tiles(video, picks, (width, height))
    if not tiles:
        raise MediaError("the video has no decodable frames")
    columns = min(SPRITE_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * width, rows * height))
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % columns) * width, (index // columns) * height))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=85)
    return out.getvalue()


STILLS: dict[str, tuple[str, str, Callable[[BinaryIO], bytes]]] = {
    "thumbnail": ("thumbnail.webp", "image/webp", thumbnail),
    "spritesheet": ("spritesheet.jpg", "image/jpeg", spritesheet),
}
"""variant -> (file name, MIME type, how it is made)."""
