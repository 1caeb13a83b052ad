"""The OpenAI `download_content` variants besides the MP4: a thumbnail and a spritesheet.

Both are derived from the stored MP4 with PyAV and Pillow the first time they are asked for,
then kept as blobs next to nothing else (`derived/<file id>/…`), so a second download costs a
file read. The route deletes them with the video.
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path

import av
from PIL import Image

from cinegen.store.blobs import BlobStore

THUMBNAIL = ("thumbnail.webp", "image/webp")
SPRITESHEET = ("spritesheet.jpg", "image/jpeg")
SPRITE_TILES = 25  # at most, evenly spread over the clip
SPRITE_COLUMNS = 5
SPRITE_TILE_WIDTH = 256

_LOCKS = [threading.Lock() for _ in range(32)]


def derived_prefix(file_id: str) -> str:
    return f"derived/{file_id}"


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return stream.frames
        return sum(1 for packet in container.demux(stream) if packet.size)


def _tiles(path: Path, picks: list[int], size: tuple[int, int]) -> list[Image.Image]:
    """The frames at `picks` (sorted indices), shrunk to `size` as they stream past."""
    wanted = {index: picks.count(index) for index in picks}
    tiles: list[Image.Image] = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                tile = frame.to_image().resize(size, Image.Resampling.LANCZOS)
                tiles.extend([tile] * wanted[index])
            if len(tiles) >= len(picks):
                break
    return tiles


def _first_frame(path: Path) -> Image.Image:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            return frame.to_image()
    raise ValueError("the video has no frames")


def thumbnail(path: Path) -> bytes:
    """The first frame, full size, as WebP."""
    out = io.BytesIO()
    _first_frame(path).save(out, format="WEBP", quality=85)
    return out.getvalue()


def spritesheet(path: Path) -> bytes:
    """Up to 25 evenly spaced frames in a 5-column grid of 256 px wide tiles, as JPEG."""
    total = _frame_count(path)
    if total <= 0:
        raise ValueError("the video has no frames")
    count = min(SPRITE_TILES, total)
    picks = [round(i * (total - 1) / max(count - 1, 1)) for i in range(count)]
    first = _first_frame(path)
    width = SPRITE_TILE_WIDTH
    height = max(1, round(width * first.height / first.width))
    tiles = _tiles(path, picks, (width, height))
    if not tiles:
        raise ValueError("the video has no decodable frames")
    columns = min(SPRITE_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * width, rows * height))
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % columns) * width, (index // columns) * height))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=85)
    return out.getvalue()


def derived(blobs: BlobStore, file_id: str, video: Path, variant: str) -> tuple[Path, str]:
    """The cached still for `variant` ("thumbnail" | "spritesheet"): (path, mime type)."""
    name, mime = THUMBNAIL if variant == "thumbnail" else SPRITESHEET
    key = f"{derived_prefix(file_id)}/{name}"
    with _LOCKS[hash(key) % len(_LOCKS)]:
        if not blobs.exists(key):
            make = thumbnail if variant == "thumbnail" else spritesheet
            blobs.put_bytes(key, make(video))
    return blobs.local_path(key), mime
