"""Exact ranking metrics for binary labels: ROC and PR curves, AUROC, AP, F1-max.

Conventions (identical to scikit-learn's, which the tests check against):

- a threshold ``t`` predicts "anomalous" for every score ``>= t``; the curves have one point per
  distinct score, in decreasing threshold order;
- AUROC is the trapezoidal area under the ROC curve, which equals the Mann-Whitney statistic
  with tied positive/negative pairs counted as 1/2;
- AP is the step-wise sum ``sum_n (R_n - R_{n-1}) * P_n`` over the distinct thresholds (no
  interpolation), as ``sklearn.metrics.average_precision_score``;
- F1-max is the largest ``2 TP / (2 TP + FP + FN)`` over the distinct thresholds, with the
  threshold that attains it (the highest one on ties).

Undefined cases return NaN instead of raising: AUROC needs at least one positive and one negative,
AP and F1-max need at least one positive (with no negatives AP = F1-max = 1).

Memory: the exact methods sort every score (O(N log N) time, about 30 bytes per sample), which is
fine up to a few tens of millions of samples; for whole datasets of large images use
:class:`~zsas_gui.core.metrics.binned.PixelCurveAccumulator`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

NAN = float("nan")


class F1Max(NamedTuple):
    """The best F1 over all thresholds and the threshold attaining it (predict ``score >= threshold``)."""

    f1: float
    threshold: float


@dataclass(frozen=True)
class CurveMetrics:
    """Pixel-level (or image-level) ranking metrics of one pool of scored samples.

    ``*_bound`` fields: guaranteed upper bounds on ``|value - exact value|`` (0.0 for the exact
    methods; see docs/metrics.md for the binned ones). ``aupro`` is NaN when it was not computed
    or is undefined (no ground-truth region or no normal pixel). ``n_regions``: connected
    ground-truth components (8-connectivity) behind ``aupro``.
    """

    auroc: float
    ap: float
    f1_max: float
    f1_threshold: float
    aupro: float
    n_pos: int
    n_neg: int
    n_regions: int = 0
    auroc_bound: float = 0.0
    ap_bound: float = 0.0
    f1_bound: float = 0.0
    aupro_bound: float = 0.0
    method: str = "exact"     # "exact" or "binned"

    def to_dict(self) -> dict:
        """A JSON-ready dict (NaN becomes None)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


# --------------------------------------------------------------------------------------- inputs


def as_scores(scores, name: str = "scores") -> np.ndarray:
    """Validate scores: a real array with no NaN/inf. Returns float32/float64 (shape kept)."""
    s = np.asarray(scores)
    if s.dtype.kind == "f":
        if s.dtype.itemsize < 4:
            s = s.astype(np.float32)
    elif s.dtype.kind in "iub":
        s = s.astype(np.float64)
    else:
        raise TypeError(f"{name} must be a real array, got dtype {s.dtype}")
    if s.size and not np.isfinite(s).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return s


def as_labels(labels, name: str = "labels") -> np.ndarray:
    """Validate binary labels: bool, or numbers that are all 0 or 1. Returns bool (shape kept)."""
    y = np.asarray(labels)
    if y.dtype == bool:
        return y
    if y.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be bool or 0/1 numbers, got dtype {y.dtype}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must be 0/1 (or bool); got values {np.unique(y)[:5].tolist()}")
    return y.astype(bool)


def _pair(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s, y = as_scores(scores), as_labels(labels)
    if s.shape != y.shape:
        raise ValueError(f"scores have shape {s.shape} but labels {y.shape}")
    if s.size == 0:
        raise ValueError("no samples: scores are empty")
    return s.ravel(), y.ravel()


# --------------------------------------------------------------------------------------- curves


def binary_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative counts at each distinct threshold, in decreasing threshold order.

    ``scores``: any shape, real; ``labels``: same shape, bool or 0/1 (True = positive).
    Returns ``(thresholds, tps, fps)``: (T,) float64 distinct scores decreasing, and (T,) int64
    counts of positives / negatives with score ``>= thresholds[i]``.
    """
    s, y = _pair(scores, labels)
    order, last, thresholds = sort_descending(s)
    tps = np.cumsum(y[order], dtype=np.int64)[last]
    fps = (last + 1) - tps
    return thresholds, tps, fps


def sort_descending(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``s``: (N,) real, N >= 1. Returns ``(order, last, thresholds)``: (N,) int64 indices sorting
    ``s`` by decreasing score, (T,) int64 position (in sorted order) of the last sample of each
    distinct score, and the (T,) float64 distinct scores, decreasing."""
    order = np.argsort(s)[::-1]
    sorted_s = s[order]
    last = np.append(np.flatnonzero(sorted_s[1:] != sorted_s[:-1]), s.size - 1)
    return order, last, sorted_s[last].astype(np.float64)


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve: ``(fpr, tpr, thresholds)``, each (T + 1,) float64, starting at (0, 0) with
    threshold +inf. NaN rates when a class is absent."""
    thr, tps, fps = binary_curve(scores, labels)
    return roc_from_counts(thr, tps, fps)


def precision_recall_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PR curve at each distinct threshold, decreasing: ``(precision, recall, thresholds)``,
    each (T,) float64 (no artificial end point; recall NaN without positives)."""
    thr, tps, fps = binary_curve(scores, labels)
    return pr_from_counts(thr, tps, fps)


def auroc(scores, labels) -> float:
    """Area under the ROC curve (ties count 1/2); NaN unless both classes are present."""
    _, tps, fps = binary_curve(scores, labels)
    return auroc_from_counts(tps, fps)


def average_precision(scores, labels) -> float:
    """Step-wise average precision ``sum (R_n - R_{n-1}) P_n``; NaN without positives."""
    _, tps, fps = binary_curve(scores, labels)
    return ap_from_counts(tps, fps)


def f1_max(scores, labels) -> F1Max:
    """Largest F1 over the distinct thresholds and its threshold; ``(nan, nan)`` without positives."""
    thr, tps, fps = binary_curve(scores, labels)
    return f1max_from_counts(thr, tps, fps)


def curve_metrics(scores, labels) -> CurveMetrics:
    """AUROC, AP and F1-max of one pool of samples in one sort (``aupro`` left NaN)."""
    thr, tps, fps = binary_curve(scores, labels)
    return metrics_from_counts(thr, tps, fps)


# ------------------------------------------------------------------ from cumulative counts
# Shared by the exact and the binned paths: ``tps``/``fps`` are (T,) cumulative counts at
# thresholds decreasing, T >= 1, the last entries being the class totals P and N.


def auroc_from_counts(tps: np.ndarray, fps: np.ndarray) -> float:
    P, N = int(tps[-1]), int(fps[-1])
    if P == 0 or N == 0:
        return NAN
    tp = np.concatenate(([0.0], tps.astype(np.float64)))
    dfp = np.diff(np.concatenate(([0], fps))).astype(np.float64)
    return float(np.sum(dfp * (tp[1:] + tp[:-1])) / (2.0 * P * N))


def ap_from_counts(tps: np.ndarray, fps: np.ndarray) -> float:
    P = int(tps[-1])
    if P == 0:
        return NAN
    t = tps.astype(np.float64)
    precision = t / (t + fps)      # every threshold holds >= 1 sample, so no 0/0
    d_recall = np.diff(np.concatenate(([0.0], t))) / P
    return float(np.sum(d_recall * precision))


def f1max_from_counts(thresholds: np.ndarray, tps: np.ndarray, fps: np.ndarray) -> F1Max:
    P = int(tps[-1])
    if P == 0:
        return F1Max(NAN, NAN)
    t = tps.astype(np.float64)
    f1 = 2.0 * t / (t + fps + P)
    i = int(np.argmax(f1))
    return F1Max(float(f1[i]), float(thresholds[i]))


def metrics_from_counts(thresholds, tps, fps, **extra) -> CurveMetrics:
    f1 = f1max_from_counts(thresholds, tps, fps)
    fields = {"auroc": auroc_from_counts(tps, fps), "ap": ap_from_counts(tps, fps), "f1_max": f1.f1,
              "f1_threshold": f1.threshold, "aupro": NAN, "n_pos": int(tps[-1]), "n_neg": int(fps[-1])}
    fields.update(extra)
    return CurveMetrics(**fields)


def roc_from_counts(thr, tps, fps):
    """(FPR, TPR, thresholds) from cumulative true/false positive counts at descending thresholds."""
    P, N = tps[-1], fps[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = np.concatenate(([0.0], fps / N)) if N else np.full(len(fps) + 1, np.nan)
        tpr = np.concatenate(([0.0], tps / P)) if P else np.full(len(tps) + 1, np.nan)
    return fpr, tpr, np.concatenate(([np.inf], thr))


def pr_from_counts(thr, tps, fps):
    """(precision, recall, thresholds) from cumulative true/false positive counts."""
    t = tps.astype(np.float64)
    precision = t / (t + fps)
    recall = t / tps[-1] if tps[-1] else np.full(len(t), np.nan)
    return precision, recall, np.asarray(thr, dtype=np.float64)
