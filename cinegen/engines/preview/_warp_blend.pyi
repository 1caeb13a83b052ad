"""Types of the C kernel `_warp_blend.c` (built by setup.py where it can be; see warp.py)."""

import numpy as np

def warp_blend(
    first: np.ndarray,
    last: np.ndarray,
    planes: np.ndarray,
    out: np.ndarray,
    width: int,
    height: int,
    small_height: int,
    scales: tuple[float, ...],  # exactly four: x and y for the first image, then the last
    t: float,
    rows_taken: np.ndarray,
    avx512: bool = ...,
    /,
) -> None: ...
