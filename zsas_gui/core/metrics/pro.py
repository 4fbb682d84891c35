"""Per-region overlap (PRO) and AUPRO, following the MVTec AD evaluation protocol.

Protocol (Bergmann et al., "The MVTec AD ..." IJCV 2021, and its reference code
``mvtec_ad_evaluation``): ground-truth regions are the 8-connected components of every mask.
For a threshold ``t`` (predict ``score >= t``),

- ``FPR(t)`` = false-positive pixels / all normal pixels, pooled over every image;
- ``PRO(t)`` = mean over all regions ``r`` of every image of ``|{p in r : score(p) >= t}| / |r|``.

The curve has one point per distinct score plus (0, 0) in front and (1, 1) at the end; AUPRO is
its trapezoidal area for FPR in [0, ``fpr_limit``] (the curve linearly interpolated at the limit)
divided by ``fpr_limit`` (0.3 by default), so a perfect map scores 1.0 and a constant map
``fpr_limit / 2``. NaN when there is no region or no normal pixel.

Only the labelling uses OpenCV (imported lazily); everything else is numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .curves import NAN, as_labels, as_scores, sort_descending

DEFAULT_FPR_LIMIT = 0.3


def label_regions(gt_mask: np.ndarray) -> tuple[int, np.ndarray]:
    """8-connected components of a mask. ``gt_mask``: (H, W) bool, row = y.

    Returns ``(n_regions, labels)`` with ``labels`` (H, W) int32: 0 = background, 1..n = region.
    """
    import cv2

    m = as_labels(gt_mask, "gt_mask")
    if m.ndim != 2:
        raise ValueError(f"gt_mask must be 2-D (H, W), got shape {m.shape}")
    if not m.any():
        return 0, np.zeros(m.shape, np.int32)
    n, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    return int(n) - 1, labels


def region_weights(gt_mask: np.ndarray) -> tuple[np.ndarray, int]:
    """PRO weight of each pixel: ``1 / |region|`` inside a ground-truth region, 0 outside.

    ``gt_mask``: (H, W) bool. Returns ``(weights, n_regions)``, weights (H, W) float64. Summing the
    weights of the pixels at or above a threshold gives that threshold's summed region overlap.
    """
    n, labels = label_regions(gt_mask)
    if n == 0:
        return np.zeros(labels.shape, np.float64), 0
    sizes = np.bincount(labels.ravel(), minlength=n + 1).astype(np.float64)
    inv = np.zeros(n + 1, np.float64)
    inv[1:] = 1.0 / sizes[1:]
    return inv[labels], n


def check_maps(score_maps, gt_masks) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The (H, W) score maps and bool masks as two equal-length lists (one pair may come bare);
    raises ValueError when their counts or shapes differ."""
    if isinstance(score_maps, np.ndarray) and score_maps.ndim == 2:
        score_maps, gt_masks = [score_maps], [gt_masks]
    score_maps, gt_masks = list(score_maps), list(gt_masks)
    if len(score_maps) != len(gt_masks):
        raise ValueError(f"{len(score_maps)} score maps but {len(gt_masks)} masks")
    if not score_maps:
        raise ValueError("no images")
    out_s, out_g = [], []
    for i, (s, g) in enumerate(zip(score_maps, gt_masks)):
        s, g = as_scores(s, f"score map {i}"), as_labels(g, f"mask {i}")
        if s.ndim != 2 or s.shape != g.shape:
            raise ValueError(f"image {i}: score map {s.shape} and mask {g.shape} must be equal (H, W)")
        out_s.append(s)
        out_g.append(g)
    return out_s, out_g


def pro_curve(score_maps: Sequence[np.ndarray] | np.ndarray,
              gt_masks: Sequence[np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact PRO curve of a set of images (the MVTec reference algorithm).

    ``score_maps``: list of (H_i, W_i) real arrays (or one 2-D array); ``gt_masks``: matching
    (H_i, W_i) bool masks. Returns ``(fpr, pro, n_regions)``: (T + 2,) float64 each, FPR and
    PRO increasing, with (0, 0) prepended and (1, 1) appended; ``[nan]`` each if undefined.
    """
    maps, masks = check_maps(score_maps, gt_masks)
    s = np.concatenate([m.ravel().astype(np.float64, copy=False) for m in maps])
    fpr, pro, n_regions, _ = pooled_pro_curve(s, masks, sort_descending(s))
    return fpr, pro, n_regions


def pooled_pro_curve(s: np.ndarray, masks: list[np.ndarray], sorted_: tuple) -> tuple:
    """PRO curve from pooled scores ``s`` ((N,) float, the masks' pixels concatenated in order)
    already sorted by :func:`sort_descending`. Returns ``(fpr, pro, n_regions, labels)`` with
    ``labels`` the (N,) bool concatenated masks."""
    order, last, _ = sorted_
    weights, n_regions = [], 0
    for g in masks:
        w, k = region_weights(g)
        weights.append(w.ravel())
        n_regions += k
    fp = ~np.concatenate([g.ravel() for g in masks])
    n_ok = int(fp.sum())
    if n_regions == 0 or n_ok == 0:
        return np.array([NAN]), np.array([NAN]), n_regions, ~fp
    fpr = np.cumsum(fp[order], dtype=np.int64)[last] / n_ok
    pro = np.cumsum(np.concatenate(weights)[order])[last] / n_regions
    fpr, pro = close_curve(fpr, pro)
    return fpr, pro, n_regions, ~fp


def close_curve(fpr: np.ndarray, pro: np.ndarray):
    """The curve clipped to [0, 1] with (0, 0) and (1, 1) added at its ends."""
    fpr = np.concatenate(([0.0], np.minimum(fpr, 1.0), [1.0]))
    pro = np.concatenate(([0.0], np.minimum(pro, 1.0), [1.0]))
    return fpr, pro


def area_to_limit(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoidal area under the polyline (x, y) for x in [x[0], limit].

    ``x``: (T,) float64 non-decreasing; ``y``: (T,) float64. The polyline is interpolated linearly
    at ``limit`` when no point lies on it (as ``trapezoid(..., x_max=limit)`` in the MVTec code).
    """
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    xe = np.minimum(x1, limit)
    keep = x0 < limit
    x0, x1, y0, y1, xe = x0[keep], x1[keep], y0[keep], y1[keep], xe[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(x1 > x0, (xe - x0) / (x1 - x0), 0.0)
    ye = y0 + frac * (y1 - y0)
    return float(np.sum((xe - x0) * (y0 + ye) * 0.5))


def aupro(score_maps, gt_masks, fpr_limit: float = DEFAULT_FPR_LIMIT) -> float:
    """Exact area under the PRO curve for FPR in [0, fpr_limit], divided by fpr_limit.

    Inputs as :func:`pro_curve`. Returns a float in [0, 1]; NaN with no region or no normal pixel.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    fpr, pro, _ = pro_curve(score_maps, gt_masks)
    if np.isnan(fpr[0]):
        return NAN
    return area_to_limit(fpr, pro, fpr_limit) / fpr_limit
