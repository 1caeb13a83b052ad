"""The process-wide allocator setting for rendering: call `keep_freed_memory()` once, at the
start of a process that renders and encodes video (`build_engines` does)."""

from __future__ import annotations

import ctypes
import functools

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt() parameters, <malloc.h>


@functools.cache
def keep_freed_memory() -> None:
    """Have glibc keep freed frames for reuse instead of handing them back to the kernel.

    Every frame (and every intermediate image of a render) is megabytes, freed after use. By
    default glibc returns such blocks to the kernel (munmap, heap trimming) and the next frame
    faults them back in, zero-filled: time in the kernel for every frame of a 4k render. With
    a fixed 32 MB mmap threshold (glibc's most) and a 1 GB trim threshold they are reused
    instead. Freed memory then stays with the process up to its high-water mark.
    Without glibc (musl, macOS) nothing changes. It applies to the whole process, hence once,
    at its start, and not from inside a library call; calling it again does nothing.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
