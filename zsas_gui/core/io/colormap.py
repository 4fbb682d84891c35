"""Heatmap colouring through 256-entry lookup tables (no recomputation to restyle).

All functions take S as (H, W) float32 in [0, 1] and return (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

from functools import cache

import numpy as np

COLORMAPS = ("jet", "turbo", "inferno", "viridis", "magma", "hot")


@cache
def lut(name: str = "jet") -> np.ndarray:
    """(256, 3) uint8 RGB colour table of an OpenCV colormap."""
    import cv2

    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, getattr(cv2, f"COLORMAP_{name.upper()}"))
    table = bgr[:, 0, ::-1].copy()
    table.setflags(write=False)
    return table


def to_index(S: np.ndarray) -> np.ndarray:
    """(H, W) float [0, 1] -> (H, W) uint8 LUT index."""
    return np.clip(np.rint(np.asarray(S, np.float32) * 255.0), 0, 255).astype(np.uint8)


def colorize(S: np.ndarray, name: str = "jet") -> np.ndarray:
    """(H, W) float [0, 1] -> (H, W, 3) uint8 RGB."""
    return lut(name)[to_index(S)]


def overlay(image: np.ndarray, S: np.ndarray | None = None, mask: np.ndarray | None = None,
            heat_alpha: float = 0.45, mask_color=(255, 32, 32), name: str = "jet") -> np.ndarray:
    """Image with the heatmap blended in and the mask outlined. image: (H, W, 3) uint8 RGB;
    S: (H, W) float [0, 1] or None; mask: (H, W) bool or None. Returns (H, W, 3) uint8 RGB."""
    import cv2

    out = image.astype(np.float32)
    if S is not None:
        out = (1 - heat_alpha) * out + heat_alpha * colorize(S, name).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if mask is not None and mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        thickness = max(1, round(max(image.shape[:2]) / 400))
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in mask_color), thickness)
    return out
