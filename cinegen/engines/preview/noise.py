"""Smooth random fields (value noise) for clouds, ridges and textures, from a seeded RNG."""

from __future__ import annotations

import cv2
import numpy as np


def value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """A smooth field in [0, 1] whose features are about `cell` pixels across."""
    gh = max(2, int(np.ceil(height / cell)) + 2)
    gw = max(2, int(np.ceil(width / cell)) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    big = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    return np.clip(big[:height, :width], 0.0, 1.0)


def fractal_noise(
    rng: np.random.Generator, height: int, width: int, cell: float, octaves: int = 4
) -> np.ndarray:
    """Sum of value-noise octaves (each half the size, half the weight), normalised to [0, 1]."""
    total = np.zeros((height, width), np.float32)
    weight, norm = 1.0, 0.0
    for _ in range(octaves):
        total += weight * value_noise(rng, height, width, max(cell, 1.5))
        norm += weight
        weight *= 0.5
        cell /= 2.0
    return total / norm


def ridge_line(rng: np.random.Generator, length: int, cell: float, octaves: int = 5) -> np.ndarray:
    """A 1-D fractal profile in [0, 1] (mountain and dune outlines)."""
    total = np.zeros(length, np.float64)
    weight, norm = 1.0, 0.0
    positions = np.arange(length, dtype=np.float64)
    for _ in range(octaves):
        knots = int(length / max(cell, 2.0)) + 3
        values = rng.random(knots)
        total += weight * np.interp(positions / max(cell, 2.0), np.arange(knots), values)
        norm += weight
        weight *= 0.5
        cell /= 2.0
    profile = total / norm
    span = profile.max() - profile.min()
    return (profile - profile.min()) / (span if span > 1e-9 else 1.0)
