"""Synthetic test images (importable from any test folder as ``synthetic``)."""

from __future__ import annotations

import numpy as np


def blob_image(hw=(96, 128), centers=((30, 40),), radius=8, seed=0) -> np.ndarray:
    """(H, W, 3) uint8 grey noise with bright discs at (x, y) centers."""
    rng = np.random.default_rng(seed)
    img = rng.integers(90, 110, size=(*hw, 3), dtype=np.uint8)
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    for cx, cy in centers:
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = 240
    return img
