"""Overlap of a binary mask with ground truth (IoU, Dice) and NaN-aware averaging.

Empty-vs-empty: when both the prediction and the ground truth are empty (a normal image
correctly predicted normal), the ratio is 0/0. We define it as ``empty`` (default 1.0: perfect
agreement), because the prediction is exactly right; pass ``empty=float("nan")`` to leave such
images out of a mean instead. A non-empty prediction on an empty ground truth (or the reverse)
scores 0.0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from .curves import as_labels


def _counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    p, g = as_labels(pred, "pred"), as_labels(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred has shape {p.shape} but gt {g.shape}")
    inter = int(np.count_nonzero(p & g))
    return inter, int(np.count_nonzero(p)), int(np.count_nonzero(g))


def iou(pred: np.ndarray, gt: np.ndarray, empty: float = 1.0) -> float:
    """Intersection over union of two (H, W) bool masks; ``empty`` when both are empty."""
    inter, n_p, n_g = _counts(pred, gt)
    union = n_p + n_g - inter
    return float(empty) if union == 0 else inter / union


def dice(pred: np.ndarray, gt: np.ndarray, empty: float = 1.0) -> float:
    """Dice coefficient ``2|P & G| / (|P| + |G|)`` of two (H, W) bool masks; ``empty`` when both
    are empty."""
    inter, n_p, n_g = _counts(pred, gt)
    total = n_p + n_g
    return float(empty) if total == 0 else 2.0 * inter / total


class MeanResult(NamedTuple):
    """Mean of the defined (non-NaN) values, how many were used and how many were NaN."""

    mean: float
    n: int
    n_undefined: int


def mean_defined(values: Iterable[float]) -> MeanResult:
    """Average skipping NaN (undefined per-image metrics); mean is NaN if nothing is defined."""
    v = np.asarray(list(values), dtype=np.float64)
    ok = ~np.isnan(v)
    n = int(ok.sum())
    return MeanResult(float(v[ok].mean()) if n else float("nan"), n, int(v.size - n))
