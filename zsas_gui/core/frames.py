"""Coordinate frames and the one conversion function for each (ALGORITHM.md §6).

- image: arrays (H, W), points float (x, y) in original pixels;
- SAM: the long side resized to ``long_side`` (1024 for real SAM, ``image_encoder.img_size`` in
  general), padded bottom/right to a ``long_side`` square; embeddings (64x64) and low-res logits
  (``mask_input_size``, 256x256) cover that padded square;
- CLIP: the image is resized (stretched) to the model input square; maps come back to (H, W).
"""

from __future__ import annotations

import numpy as np

#: Distances in ALGORITHM.md are given in SAM's 1024-px frame.
SAM_REFERENCE_SIDE = 1024


def sam_input_size(hw: tuple[int, int], long_side: int = SAM_REFERENCE_SIDE) -> tuple[int, int]:
    """(h, w) of the image after SAM's resize of the long side (same rounding as SAM)."""
    h, w = hw
    scale = long_side / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def image_to_sam_points(points_xy: np.ndarray, hw: tuple[int, int],
                        long_side: int = SAM_REFERENCE_SIDE) -> np.ndarray:
    """(N, 2) float (x, y) image pixels -> (N, 2) float32 (x, y) in SAM's resized frame."""
    h, w = hw
    nh, nw = sam_input_size(hw, long_side)
    pts = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2).copy()
    pts[:, 0] *= nw / w
    pts[:, 1] *= nh / h
    return pts


def image_scale_from_1024(hw: tuple[int, int]) -> float:
    """Factor turning a distance in SAM's 1024 frame into image pixels: max(H, W) / 1024."""
    return max(hw) / SAM_REFERENCE_SIDE


def sam_grid_to_image(grid: np.ndarray, hw: tuple[int, int], long_side: int = SAM_REFERENCE_SIDE,
                      interpolation: str = "linear") -> np.ndarray:
    """Map a (g, g) float array over SAM's padded square back to (H, W) image pixels.

    Upsamples to the padded ``long_side`` square, crops the resized image region, resizes to
    (H, W). Used for SAM-feature similarity maps (64x64) and low-res logits (256x256).
    """
    import cv2

    interp = cv2.INTER_LINEAR if interpolation == "linear" else cv2.INTER_NEAREST
    g = np.asarray(grid, dtype=np.float32)
    nh, nw = sam_input_size(hw, long_side)
    square = cv2.resize(g, (long_side, long_side), interpolation=interp)
    crop = square[:nh, :nw]
    return cv2.resize(crop, (hw[1], hw[0]), interpolation=interp)


def image_to_sam_grid(image_map: np.ndarray, grid: int, long_side: int = SAM_REFERENCE_SIDE,
                      pad_value: float = 0.0) -> np.ndarray:
    """Map an (H, W) float array into SAM's padded square at (grid, grid) resolution.

    Resizes to SAM's input size, pads bottom/right with ``pad_value``, downsamples (area) to
    ``grid``. The inverse of :func:`sam_grid_to_image` up to resampling.
    """
    import cv2

    m = np.asarray(image_map, dtype=np.float32)
    nh, nw = sam_input_size(m.shape[:2], long_side)
    resized = cv2.resize(m, (nw, nh), interpolation=cv2.INTER_LINEAR)
    square = np.full((long_side, long_side), pad_value, np.float32)
    square[:nh, :nw] = resized
    return cv2.resize(square, (grid, grid), interpolation=cv2.INTER_AREA)


def mask_to_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight box of a (H, W) bool mask as (4,) float32 (x0, y0, x1, y1) image pixels
    (x1, y1 inclusive pixel index), or None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(cols) == 0:
        return None
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float32)
