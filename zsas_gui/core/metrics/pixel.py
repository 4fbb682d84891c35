"""Exact pixel-level and image-level metrics of a (small) set of images, in one call."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .curves import NAN, CurveMetrics, curve_metrics, metrics_from_counts, sort_descending
from .pro import DEFAULT_FPR_LIMIT, area_to_limit, check_maps, pooled_pro_curve


def pixel_metrics(score_maps: Sequence[np.ndarray] | np.ndarray, gt_masks: Sequence[np.ndarray] | np.ndarray,
                  *, with_aupro: bool = True, fpr_limit: float = DEFAULT_FPR_LIMIT) -> CurveMetrics:
    """Exact pooled pixel AUROC, AP, F1-max (+ threshold) and AUPRO over all pixels of all images.

    ``score_maps``: list of (H_i, W_i) real arrays (or one 2-D array); ``gt_masks``: matching
    (H_i, W_i) bool masks, True = defect. All-normal images add negatives to the pool; a metric is
    NaN only when the whole pool lacks the class it needs (see :mod:`.curves`). Holds every pixel
    in memory (~30 bytes each): for large datasets use :class:`.PixelCurveAccumulator`.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    maps, masks = check_maps(score_maps, gt_masks)
    scores = np.concatenate([m.ravel().astype(np.float64, copy=False) for m in maps])
    sorted_ = sort_descending(scores)           # one sort serves both curves
    order, last, thresholds = sorted_
    labels = np.concatenate([g.ravel() for g in masks])
    tps = np.cumsum(labels[order], dtype=np.int64)[last]
    m = metrics_from_counts(thresholds, tps, (last + 1) - tps)
    if not with_aupro:
        return m
    fpr, pro, n_regions, _ = pooled_pro_curve(scores, masks, sorted_)
    value = NAN if np.isnan(fpr[0]) else area_to_limit(fpr, pro, fpr_limit) / fpr_limit
    return dataclasses.replace(m, aupro=value, n_regions=n_regions)


def image_metrics(image_scores: Sequence[float] | np.ndarray,
                  is_anomalous: Sequence[bool] | np.ndarray) -> CurveMetrics:
    """Image-level AUROC, AP and F1-max from one score per image.

    ``image_scores``: (N,) real (e.g. ``AnomalyResult.image_score``); ``is_anomalous``: (N,) bool,
    True for a defective image. ``aupro`` is NaN (not an image-level metric).
    """
    return curve_metrics(np.asarray(image_scores, dtype=np.float64).reshape(-1),
                         np.asarray(is_anomalous).reshape(-1))
