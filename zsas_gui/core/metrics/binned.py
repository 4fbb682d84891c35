"""Streaming, histogram-binned pixel metrics with guaranteed error bounds.

:class:`PixelCurveAccumulator` takes one ``(score_map, gt_mask)`` pair at a time and keeps only
per-bin histograms (O(bins) memory, independent of the dataset): positive and negative pixel
counts, the summed PRO weight ``1 / |region|`` of region pixels, and the smallest and largest
score that fell in each bin. AUROC, AP, F1-max and AUPRO are then the exact metrics of the
thresholds that lie *between* bins, and the error bounds follow from treating every bin as an
unordered set of scores (docs/metrics.md derives them):

- AUROC: ``|binned - exact| <= 1/2 * sum_b pos_b * neg_b / (P * N)`` (the positive-negative
  pairs sharing a bin, which the binned value counts as ties);
- AP: ``<= sum_b (pos_b / P) * max(Pmax_b - P_b, P_b - Pmin_b)``, the precision range inside a bin;
- F1-max: the binned value is attained exactly (at the returned threshold) and is ``<=`` exact;
  ``exact - binned <= max_b 2 TP_b / (TP_b + FP_{b-1} + P) - binned``;
- AUPRO: ``<= (sum_b 1/2 dFPR_b dPRO_b + (limit - FPR_{b-1}) dPRO_b for the bin crossing the
  limit) / limit``.

Bins whose smallest and largest scores are equal hold one distinct value and contribute no error,
so binary or constant score maps give exact values with a zero bound. The bounds are computed
from the histograms and returned in :class:`~zsas_gui.core.metrics.curves.CurveMetrics`.

Bins are left-open and right-closed, ``(a, b]``, so the score at the lower end of the range (0 for
masked maps such as ``S * M``: every pixel outside the mask) forms a bin of its own and is exact.

Score range: either ``range=(lo, hi)`` (bin 0 holds ``lo``, then ``bins - 1`` equal bins up to
``hi``; scores outside go to the end bins and are counted in ``n_out_of_range``: the bounds stay
valid, only resolution is lost) or ``range=None`` (adaptive: bins ``(k - 1, k] * 2**e`` on a grid
anchored at 0; when a score falls outside, the grid shifts or adjacent bins merge pairwise
(``e += 1``) until everything fits, so the final width is at most ``2 * (max - min) / (bins - 2)``
of all the data seen).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Self

import numpy as np

from .curves import (
    NAN,
    CurveMetrics,
    as_labels,
    as_scores,
    metrics_from_counts,
    pr_from_counts,
    roc_from_counts,
)
from .pro import DEFAULT_FPR_LIMIT, area_to_limit, close_curve, label_regions

DEFAULT_BINS = 65536
_CHUNK = 1 << 18     # pixels processed at once (bounds the temporaries to a few MB)


def _coarsen(g, k: int):
    """Bin index after merging 2**k bins into one: ``ceil(g / 2**k)`` (int or int64 array)."""
    return -((-g) >> k)


class PixelCurveAccumulator:
    """Accumulate pixel scores of many images into histograms; read AUROC/AP/F1-max/AUPRO.

    ``bins``: number of histogram bins (>= 16; 65536 uses ~2.6 MB). ``range``: ``(lo, hi)`` known
    score range, or None for the adaptive power-of-two grid. ``aupro``: also accumulate the PRO
    curve (labels gt regions with OpenCV). ``fpr_limit``: AUPRO integration limit.
    """

    def __init__(self, bins: int = DEFAULT_BINS, range: tuple[float, float] | None = None, *,
                 aupro: bool = True, fpr_limit: float = DEFAULT_FPR_LIMIT):
        if int(bins) != bins or bins < 16:
            raise ValueError(f"bins must be an integer >= 16, got {bins}")
        if range is not None:
            lo, hi = float(range[0]), float(range[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"range must be finite (lo, hi) with lo < hi, got {range}")
            range = (lo, hi)
        if not 0.0 < fpr_limit <= 1.0:
            raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
        self.bins = int(bins)
        self.range = range
        self.fpr_limit = float(fpr_limit)
        B = self.bins
        self._pos = np.zeros(B, np.int64)
        self._neg = np.zeros(B, np.int64)
        self._min = np.full(B, np.inf)
        self._max = np.full(B, -np.inf)
        self._prow = np.zeros(B, np.float64) if aupro else None
        self._exp: int | None = None      # adaptive: bin width is 2**_exp ...
        self._i0 = 0                      # ... and bin j covers (i0 + j - 1, i0 + j] * 2**_exp
        self.n_images = 0
        self.n_regions = 0
        self.n_out_of_range = 0

    # ------------------------------------------------------------------------------ properties

    @property
    def adaptive(self) -> bool:
        return self.range is None

    @property
    def with_aupro(self) -> bool:
        return self._prow is not None

    @property
    def bin_width(self) -> float:
        """Current bin width in score units (NaN for an empty adaptive accumulator)."""
        if self.range is not None:
            return (self.range[1] - self.range[0]) / (self.bins - 1)
        return NAN if self._exp is None else 2.0 ** self._exp

    @property
    def n_pixels(self) -> int:
        return int(self._pos.sum() + self._neg.sum())

    # ------------------------------------------------------------------------------ updating

    def update(self, score_map: np.ndarray, gt_mask: np.ndarray) -> None:
        """Add one image. ``score_map``: (H, W) real, finite; ``gt_mask``: (H, W) bool (True = defect)."""
        s = as_scores(score_map, "score_map")
        g = as_labels(gt_mask, "gt_mask")
        if s.ndim != 2 or s.shape != g.shape:
            raise ValueError(f"score map {s.shape} and gt mask {g.shape} must be equal (H, W) shapes")
        self.n_images += 1
        if s.size == 0:
            return
        flat, gflat = s.ravel(), g.ravel()
        smin, smax = float(flat.min()), float(flat.max())
        if self.range is None:
            self._fit(smin, smax)
        elif smin < self.range[0] or smax > self.range[1]:
            self.n_out_of_range += int(np.count_nonzero((flat < self.range[0]) | (flat > self.range[1])))
        inv_size = labels = None
        if self._prow is not None and gflat.any():
            n_reg, labels2d = label_regions(g)
            self.n_regions += n_reg
            labels = labels2d.ravel()
            inv_size = np.zeros(n_reg + 1)
            inv_size[1:] = 1.0 / np.bincount(labels, minlength=n_reg + 1)[1:]
        B = self.bins
        for a in range(0, flat.size, _CHUNK):
            sc, gc = flat[a:a + _CHUNK], gflat[a:a + _CHUNK]
            idx = self._index(sc)
            cnt = np.bincount(idx * 2 + gc, minlength=2 * B)
            self._neg += cnt[0::2]
            self._pos += cnt[1::2]
            s64 = sc.astype(np.float64, copy=False)
            np.minimum.at(self._min, idx, s64)
            np.maximum.at(self._max, idx, s64)
            if labels is not None:
                sel = np.flatnonzero(gc)
                if sel.size:
                    self._prow += np.bincount(idx[sel], weights=inv_size[labels[a:a + _CHUNK][sel]],
                                              minlength=B)

    def _index(self, sc: np.ndarray) -> np.ndarray:
        """Bin index (int64, in [0, bins)) of each score; monotone non-decreasing in the score."""
        if self.range is not None:
            lo, hi = self.range
            v = (sc - lo) * ((self.bins - 1) / (hi - lo))    # stays in the input float dtype
            np.ceil(v, out=v)
            np.clip(v, 0, self.bins - 1, out=v)
            return v.astype(np.int64)
        v = sc * np.float64(2.0 ** -self._exp)          # exact: scaling by a power of two
        np.ceil(v, out=v)
        idx = v.astype(np.int64)
        idx -= self._i0
        return idx

    def _fit(self, smin: float, smax: float, min_exp: int | None = None) -> None:
        """Adaptive mode: coarsen (merge bin pairs) and/or shift until [smin, smax] fits."""
        mag = max(abs(smin), abs(smax))
        e_floor = math.frexp(mag)[1] - 52      # keeps |score| / 2**e < 2**53 (exact indices)
        if self._exp is None:
            span = smax - smin
            e0 = math.frexp(span / (self.bins - 2))[1] if span > 0 else e_floor + 28
            self._exp, self._i0 = max(e0, e_floor), 0
        e = max(self._exp, e_floor, min_exp if min_exp is not None else self._exp)
        used = np.flatnonzero(self._pos + self._neg)
        while True:
            k = e - self._exp
            glo, ghi = math.ceil(smin * 2.0 ** -e), math.ceil(smax * 2.0 ** -e)
            if used.size:
                glo = min(glo, _coarsen(self._i0 + int(used[0]), k))
                ghi = max(ghi, _coarsen(self._i0 + int(used[-1]), k))
            if ghi - glo < self.bins:
                break
            e += 1
        if e == self._exp and self._i0 <= glo and ghi < self._i0 + self.bins:
            return
        self._rebin(e, glo - (self.bins - 1 - (ghi - glo)) // 2)

    def _rebin(self, e: int, i0: int) -> None:
        k = e - self._exp
        nz = np.flatnonzero(self._pos + self._neg)
        j = _coarsen(self._i0 + nz, k) - i0
        arrays = [("_pos", np.add), ("_neg", np.add), ("_min", np.minimum), ("_max", np.maximum)]
        if self._prow is not None:
            arrays.append(("_prow", np.add))
        for name, op in arrays:
            old = getattr(self, name)
            new = np.full_like(old, np.inf if name == "_min" else -np.inf if name == "_max" else 0)
            op.at(new, j, old[nz])
            setattr(self, name, new)
        self._exp, self._i0 = e, i0

    def merge(self, other: PixelCurveAccumulator) -> PixelCurveAccumulator:
        """Add another accumulator's data (same ``bins`` and ``range``; AUPRO only if both
        accumulate it). Returns self."""
        if not isinstance(other, PixelCurveAccumulator):
            raise TypeError(f"cannot merge {type(other).__name__}")
        if other.bins != self.bins or other.range != self.range:
            raise ValueError(f"cannot merge accumulators with different bins/range: "
                             f"{self.bins}/{self.range} vs {other.bins}/{other.range}")
        if self.with_aupro and not other.with_aupro:
            raise ValueError("cannot merge an accumulator without AUPRO into one with it")
        nz = np.flatnonzero(other._pos + other._neg)
        if nz.size:
            if self.range is not None:
                j = nz
            else:
                self._fit(float(other._min[nz].min()), float(other._max[nz].max()), min_exp=other._exp)
                j = _coarsen(other._i0 + nz, self._exp - other._exp) - self._i0
            np.add.at(self._pos, j, other._pos[nz])
            np.add.at(self._neg, j, other._neg[nz])
            np.minimum.at(self._min, j, other._min[nz])
            np.maximum.at(self._max, j, other._max[nz])
            if self._prow is not None:
                np.add.at(self._prow, j, other._prow[nz])
        self.n_images += other.n_images
        self.n_regions += other.n_regions
        self.n_out_of_range += other.n_out_of_range
        return self

    def copy(self) -> PixelCurveAccumulator:
        """An independent copy (histograms duplicated)."""
        new = copy.copy(self)
        for name in ("_pos", "_neg", "_min", "_max", "_prow"):
            arr = getattr(self, name)
            setattr(new, name, None if arr is None else arr.copy())
        return new

    def __iadd__(self, other: PixelCurveAccumulator) -> Self:
        return self.merge(other)

    # ------------------------------------------------------------------------------ reading

    def _curve(self):
        """Non-empty bins from the highest scores down: thresholds (bin minima), cumulative
        positives/negatives, per-bin counts, multi-valued flag, per-bin PRO weight."""
        nz = np.flatnonzero(self._pos + self._neg)[::-1]
        if nz.size == 0:
            raise ValueError("no pixels accumulated yet")
        p, n = self._pos[nz], self._neg[nz]
        prow = self._prow[nz] if self._prow is not None else None
        return self._min[nz], np.cumsum(p), np.cumsum(n), p, n, self._min[nz] < self._max[nz], prow

    def result(self) -> CurveMetrics:
        """Binned AUROC, AP, F1-max (+ threshold: predict ``score >= threshold``) and AUPRO, each
        with its guaranteed error bound; NaN where undefined (see :mod:`.curves`)."""
        thr, tps, fps, p, n, multi, prow = self._curve()
        P, N = int(tps[-1]), int(fps[-1])
        m = metrics_from_counts(thr, tps, fps, method="binned", n_regions=self.n_regions)
        auroc_b = float(np.sum((p * n.astype(np.float64))[multi]) / (2.0 * P * N)) if P and N else NAN
        ap_b = f1_b = NAN
        if P:
            t = tps.astype(np.float64)
            a, c = t - p, (fps - n).astype(np.float64)
            p_bin = t / (t + fps)
            with np.errstate(invalid="ignore"):      # 0/0 only in bins with no positive (masked)
                p_max = t / (t + c)
            p_min = (a + 1) / (a + 1 + c + n)
            err = (p / P) * np.maximum(p_max - p_bin, p_bin - p_min)
            ap_b = float(np.sum(err[multi & (p > 0)]))
            f1_up = 2 * t / (t + c + P)
            f1_b = float(max(0.0, f1_up[multi].max() - m.f1_max)) if multi.any() else 0.0
        aupro_v = aupro_b = NAN
        if prow is not None and self.n_regions and N:
            aupro_v, aupro_b = self._aupro(fps / N, np.cumsum(prow) / self.n_regions, multi)
        return dataclasses.replace(m, aupro=aupro_v, auroc_bound=auroc_b, ap_bound=ap_b, f1_bound=f1_b,
                                   aupro_bound=aupro_b)

    def _aupro(self, fpr, pro, multi) -> tuple[float, float]:
        L = self.fpr_limit
        F, R = close_curve(fpr, pro)
        value = area_to_limit(F, R, L) / L
        f_prev, dF, dR = F[:-2], np.diff(F)[:-1], np.diff(R)[:-1]   # segment into bin b, b = 0..T-1
        full = multi & (F[1:-1] <= L)
        cross = multi & (f_prev < L) & (F[1:-1] > L)
        bound = 0.5 * np.sum(dF[full] * dR[full]) + np.sum((L - f_prev[cross]) * dR[cross])
        return value, float(bound / L)

    def roc_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Binned ROC: ``(fpr, tpr, thresholds)``, (T + 1,) float64 each, from (0, 0)."""
        thr, tps, fps, *_ = self._curve()
        return roc_from_counts(thr, tps, fps)

    def precision_recall_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Binned PR curve: ``(precision, recall, thresholds)``, (T,) float64, thresholds decreasing."""
        thr, tps, fps, *_ = self._curve()
        return pr_from_counts(thr, tps, fps)

    def pro_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Binned PRO curve ``(fpr, pro)``, (T + 2,) float64, from (0, 0) to (1, 1); NaN if undefined."""
        _, _, fps, _, _, _, prow = self._curve()
        if prow is None or not self.n_regions or not fps[-1]:
            return np.array([NAN]), np.array([NAN])
        return close_curve(fps / fps[-1], np.cumsum(prow) / self.n_regions)
