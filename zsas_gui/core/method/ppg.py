"""PPG: Co-Feature Point Prompt Generation (ALGORITHM.md §2). numpy + OpenCV only.

From the normalised anomaly map S and SAM's image embedding F, choose positive points at the
extreme-anomaly region's maxima and negative points in a ring around it, least similar to the
region's SAM-feature prototype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frames import image_scale_from_1024, image_to_sam_grid, image_to_sam_points, sam_grid_to_image
from ..types import MethodParams, Prompts


@dataclass(frozen=True, eq=False)
class PPGResult:
    """Prompts and every intermediate of one PPG run (all (H, W) image frame).

    ``S``: float32 [0, 1] normalised map; ``region``: bool, R > 0 (eq. 1); ``ring``: bool, N
    (eq. 3); ``similarity``: float32 cosine similarity of SAM features to the region prototype
    (None for the lowest-score rule or when there is no region); ``gated``: the gate predicted
    the image normal (then there are no prompts).
    """

    prompts: Prompts
    S: np.ndarray
    region: np.ndarray
    ring: np.ndarray
    similarity: np.ndarray | None
    gated: bool = False


def extreme_region(S: np.ndarray, tau: float) -> np.ndarray:
    """R = S * 1[S >= tau] (eq. 1): (H, W) float32, zero outside the extreme region.
    An all-zero S (a flat map) has no region."""
    S = np.asarray(S, dtype=np.float32)
    return np.where((S >= tau) & (S > 0), S, 0.0).astype(np.float32)


def ring_around(region: np.ndarray, size_px: float) -> np.ndarray:
    """N = dilate(region, ellipse of ``size_px`` diameter) - region: (H, W) bool."""
    import cv2

    k = max(3, int(round(size_px)) | 1)  # odd kernel, at least 3
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    dil = cv2.dilate(region.astype(np.uint8), kernel) > 0
    return dil & ~region


def spaced_extrema(values: np.ndarray, allowed: np.ndarray, k: int, d_min: float,
                   largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Greedy top-k (or bottom-k) of ``values`` over ``allowed`` pixels, each at least ``d_min``
    pixels from the ones already taken (eq. 2).

    values: (H, W) float; allowed: (H, W) bool. Returns ((n, 2) float32 (x, y) pixel
    coordinates, (n,) float32 values) with n <= k, best first.
    """
    work = np.where(allowed, values if largest else -values, -np.inf).astype(np.float64)
    h, w = work.shape
    pts, vals = [], []
    r = max(float(d_min), 0.0)
    for _ in range(k):
        idx = int(np.argmax(work))
        y, x = divmod(idx, w)
        if not np.isfinite(work[y, x]):
            break
        pts.append((x, y))
        vals.append(values[y, x])
        # suppress the open disk of radius d_min (points exactly d_min apart stay allowed)
        y0, y1 = max(0, int(y - r)), min(h, int(y + r) + 1)
        x0, x1 = max(0, int(x - r)), min(w, int(x + r) + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disk = (yy - y) ** 2 + (xx - x) ** 2 < r * r
        work[y0:y1, x0:x1][disk] = -np.inf
        work[y, x] = -np.inf
    return np.asarray(pts, np.float32).reshape(-1, 2), np.asarray(vals, np.float32)


def feature_similarity(features: np.ndarray, region: np.ndarray, long_side: int,
                       S: np.ndarray) -> np.ndarray:
    """Cosine similarity of every SAM embedding cell to the region's prototype, in image pixels.

    features: (C, g, g) float32 SAM embedding over the padded ``long_side`` square;
    region: (H, W) bool; S: (H, W) float32 normalised map. Prototype = normalize(mean of F over
    the cells the region covers at least half); a region smaller than that (it may even vanish
    in SAM's resize) uses the one cell holding the maximum of S inside the region (ALGORITHM.md
    §2), never the whole image. Returns (H, W) float32 in [-1, 1].
    """
    C, g, _ = features.shape
    cover = image_to_sam_grid(region.astype(np.float32), g, long_side)       # (g, g) fraction
    cells = cover >= 0.5
    if not cells.any():
        cells = np.zeros((g, g), bool)
        row, col = peak_cell(np.where(region, S, -np.inf), g, long_side)
        cells[row, col] = True
    F = features.reshape(C, g * g).astype(np.float32)
    Fn = F / np.maximum(np.linalg.norm(F, axis=0, keepdims=True), 1e-12)
    proto = F[:, cells.reshape(-1)].mean(axis=1)
    proto /= max(float(np.linalg.norm(proto)), 1e-12)
    sim = (proto @ Fn).reshape(g, g)
    return sam_grid_to_image(sim, region.shape, long_side)


def peak_cell(values: np.ndarray, g: int, long_side: int) -> tuple[int, int]:
    """(row, col) of the SAM grid cell (``g`` x ``g`` over the padded ``long_side`` square) that
    holds the maximum of ``values`` ((H, W) float, image pixels)."""
    y, x = divmod(int(np.argmax(values)), values.shape[1])
    (sx, sy), = image_to_sam_points(np.array([[x + 0.5, y + 0.5]], np.float32), values.shape, long_side)
    cell = long_side / g
    return min(int(sy // cell), g - 1), min(int(sx // cell), g - 1)


def generate_prompts(S: np.ndarray, image_score: float, params: MethodParams,
                     features: np.ndarray | None = None, long_side: int = 1024,
                     region_mask: np.ndarray | None = None, component: int | None = None) -> PPGResult:
    """Run PPG on one image.

    S: (H, W) float32 normalised anomaly map in [0, 1]; image_score: float in [0, 1];
    features: (C, g, g) float32 SAM embedding (needed for ``negative_rule="sam_similarity"``);
    long_side: SAM's input side; region_mask: optional (H, W) bool restricting R to one component
    (the per-component mode): its ring then excludes *all* of R, so a negative never lands on
    another anomaly; component: the index stored with every point (``Prompts.components``).
    Returns a :class:`PPGResult` with points in (x, y) image pixels.
    """
    S = np.asarray(S, dtype=np.float32)
    hw = S.shape
    empty = np.zeros(hw, bool)
    if params.gate is not None and image_score < params.gate:
        return PPGResult(Prompts.empty(), S, empty, empty, None, gated=True)
    R = extreme_region(S, params.tau)
    whole = R > 0                                   # all of R, every component
    if region_mask is not None:
        R = np.where(region_mask, R, 0.0).astype(np.float32)
    region = R > 0
    if not region.any():
        return PPGResult(Prompts.empty(), S, region, empty, None)
    scale = image_scale_from_1024(hw)
    pos, pos_val = spaced_extrema(R, region, params.k_pos, params.d_min_1024 * scale, largest=True)
    ring = ring_around(region, params.ring_1024 * scale) & ~whole
    d_neg = params.d_min_neg_1024 * scale
    similarity = None
    if params.k_neg == 0 or not ring.any():
        neg, neg_val = np.zeros((0, 2), np.float32), np.zeros(0, np.float32)
    elif params.negative_rule == "sam_similarity":
        if features is None:
            raise ValueError("negative_rule='sam_similarity' needs the SAM image embedding")
        similarity = feature_similarity(features, region, long_side, S)
        neg, neg_val = spaced_extrema(similarity, ring, params.k_neg, d_neg, largest=False)
    else:
        neg, neg_val = spaced_extrema(S, ring, params.k_neg, d_neg, largest=False)
    n = len(pos) + len(neg)
    prompts = Prompts(np.concatenate([pos, neg]),
                      np.concatenate([np.ones(len(pos), np.int32), np.zeros(len(neg), np.int32)]),
                      np.concatenate([pos_val, neg_val]),
                      None if component is None else np.full(n, component, np.int32))
    return PPGResult(prompts, S, region, ring, similarity)


def region_components(S: np.ndarray, tau: float, min_area_px: int) -> list[np.ndarray]:
    """Connected components (8-connectivity) of R > 0 with at least ``min_area_px`` pixels,
    as (H, W) bool masks, largest first (the per-component mode)."""
    import cv2

    region = (extreme_region(S, tau) > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [labels == i for i in order if stats[i, cv2.CC_STAT_AREA] >= max(1, min_area_px)]
