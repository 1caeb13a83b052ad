"""The encoder's frame pipeline: a clip's frames rendered on one thread and converted to NV12
on another, a bounded way ahead of the encoder that takes them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

import av
import numpy as np

from cinegen.media.clip import Clip
from cinegen.media.nv12 import Nv12Converter

PREFETCH_FRAMES = 8
"""At most this many frames are rendered and not yet encoded (in the queues and threads)."""


def converted_ahead(clip: Clip) -> Iterator[av.VideoFrame]:
    """The clip's frames as NV12: rendered on one thread, converted on another.

    The engine's work (a preview render, or a VAE decode), the RGB → NV12 conversion and x264
    then run side by side, each on the frames the next stage has not reached yet, instead of
    taking turns. An error (Cancelled included) is raised here, in order; when the consumer
    stops early, both threads stop at their next frame. Engines must not change a frame after
    yielding it (it waits in a queue).
    """
    convert = Nv12Converter(clip.width, clip.height, clip.frame_size)
    ends = {0, clip.num_frames - 1, *clip.keyframes}

    def converted(numbered: tuple[int, np.ndarray]) -> av.VideoFrame:
        index, rgb = numbered
        return convert(rgb, match_colours=index in ends)

    depth = PREFETCH_FRAMES // 2 - 1  # per queue: each thread holds one more frame
    rendered = _ahead(_checked(clip), depth, "cinegen-render")
    return _ahead(_mapped(converted, rendered), depth, "cinegen-convert")


def _checked(clip: Clip) -> Iterator[tuple[int, np.ndarray]]:
    """The clip's first `num_frames` frames, numbered, each checked for size and type; the
    engine's iterator is closed at the end, early or not (it may hold a decoder open)."""
    try:
        for index, frame in enumerate(clip.frames):
            if index == clip.num_frames:
                return
            _check_frame(frame, clip, index)
            yield index, frame
    finally:
        close = getattr(clip.frames, "close", None)
        if close is not None:
            close()


T = TypeVar("T")
U = TypeVar("U")


def _mapped(function: Callable[[T], U], items: Generator[T, None, None]) -> Iterator[U]:
    """`map`, closing `items` when it is closed (so a stage's thread stops with it)."""
    try:
        for item in items:
            yield function(item)
    finally:
        items.close()


def _ahead(items: Iterator[T], depth: int, name: str) -> Generator[T, None, None]:
    """`items`, produced on a thread of their own up to `depth` ahead of the caller."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(end)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


def _check_frame(frame: np.ndarray, clip: Clip, index: int) -> None:
    width, height = clip.frame_size
    expected = (height, width, 3)
    if frame.shape != expected or frame.dtype != np.uint8:
        raise ValueError(f"frame {index} is {frame.shape} {frame.dtype}, expected {expected} uint8")
