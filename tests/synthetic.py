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


# --- folder maps: a folder of textured parts, one with a defect -----------------------------
BLOB = (slice(30, 50), slice(50, 70))        # rows, cols around the blob centre (40, 60)
STRIPE = (slice(10, 16), slice(None))
BACKGROUND = (slice(64, 92), slice(4, 40))


def part(seed: int, blob: bool = False, stripe: bool = True) -> np.ndarray:
    """(96, 96, 3) uint8: grey texture (its own noise per seed), a dark stripe at the same place
    in every image, and on request a red disc (the defect) at (x=60, y=40)."""
    rng = np.random.default_rng(seed)
    a = np.repeat((128 + 40 * rng.standard_normal((96, 96, 1))).clip(0, 255), 3, axis=2)
    if stripe:
        a[STRIPE] = 0
    if blob:
        yy, xx = np.mgrid[:96, :96]
        a[(yy - 40) ** 2 + (xx - 60) ** 2 < 100] = (250, 30, 30)
    return a.astype(np.uint8)


def region(amap: np.ndarray, where) -> float:
    return float(amap[where].mean())
