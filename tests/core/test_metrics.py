"""Metrics against scikit-learn, a brute-force PRO reference, hand-computed cases and the
binned error bounds (docs/metrics.md)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from zsas_gui.core.metrics import (
    PixelCurveAccumulator,
    aupro,
    auroc,
    average_precision,
    dice,
    f1_max,
    image_metrics,
    iou,
    mean_defined,
    pixel_metrics,
    pro_curve,
    roc_curve,
)

TOL = 1e-4


# ------------------------------------------------------------------------------------ helpers


def sk_f1max(y, s):
    """F1-max the way the issue asks: from sklearn's precision_recall_curve."""
    p, r, _ = skm.precision_recall_curve(y, s)
    with np.errstate(invalid="ignore"):
        f1 = np.nan_to_num(2 * p * r / (p + r))
    return float(f1.max())


def check_exact_vs_sklearn(y, s):
    assert auroc(s, y) == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    assert average_precision(s, y) == pytest.approx(skm.average_precision_score(y, s), abs=TOL)
    best = f1_max(s, y)
    assert best.f1 == pytest.approx(sk_f1max(y, s), abs=TOL)
    # the returned threshold attains the maximum (sklearn's own F1 at score >= threshold)
    assert skm.f1_score(y, s >= best.threshold) == pytest.approx(best.f1, abs=TOL)


def brute_force_aupro(maps, masks, limit=0.3):
    """Reference AUPRO: every distinct threshold evaluated directly, regions from scipy (3x3
    structure = 8-connectivity), integrated like MVTec's trapezoid(x_max=limit)."""
    labelled = [ndimage.label(g, structure=np.ones((3, 3)))for g in masks]
    n_ok = sum((~g).sum() for g in masks)
    xs, ys = [0.0], [0.0]
    for t in np.unique(np.concatenate([m.ravel() for m in maps]))[::-1]:
        fp = sum(((m >= t) & ~g).sum() for m, g in zip(maps, masks))
        overlaps = [((m >= t) & (lab == k)).sum() / (lab == k).sum()
                    for m, (lab, n) in zip(maps, labelled) for k in range(1, n + 1)]
        xs.append(fp / n_ok)
        ys.append(float(np.mean(overlaps)))
    xs, ys = np.array(xs + [1.0]), np.array(ys + [1.0])
    i = np.searchsorted(xs, limit, side="right")      # first point beyond the limit
    y_lim = ys[i - 1] + (ys[i] - ys[i - 1]) * (limit - xs[i - 1]) / (xs[i] - xs[i - 1])
    x, y = np.append(xs[:i], limit), np.append(ys[:i], y_lim)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / limit)


def random_maps(rng, n=4, shape=(24, 31), ties=False):
    maps, masks = [], []
    for i in range(n):
        g = np.zeros(shape, bool)
        if i % 3 != 2:                     # every third image is all-normal
            y, x = rng.integers(0, shape[0] - 6), rng.integers(0, shape[1] - 6)
            g[y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = True
            g[rng.integers(0, shape[0]), rng.integers(0, shape[1])] = True
        s = rng.random(shape) + 0.6 * g * rng.random(shape)
        maps.append(np.round(s * 4) / 4 if ties else s.astype(np.float32))
        masks.append(g)
    return maps, masks


def accumulate(maps, masks, **kw):
    acc = PixelCurveAccumulator(**kw)
    for s, g in zip(maps, masks):
        acc.update(s, g)
    return acc.result()


def assert_within_bounds(binned, exact):
    for k in ("auroc", "ap", "aupro"):
        assert abs(getattr(binned, k) - getattr(exact, k)) <= getattr(binned, f"{k}_bound") + 1e-9, k
    # the binned F1 is attained exactly, so it can only be below the exact maximum
    assert -1e-9 <= exact.f1_max - binned.f1_max <= binned.f1_bound + 1e-9


# ------------------------------------------------------------------- exact vs scikit-learn


@pytest.mark.parametrize("seed", range(6))
def test_exact_matches_sklearn_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    y = rng.random(n) < rng.uniform(0.05, 0.6)
    y[:2] = [True, False]
    s = rng.normal(size=n) + y * rng.uniform(0, 2)
    check_exact_vs_sklearn(y, s)


@pytest.mark.parametrize("case", ["many_ties", "constant", "single_positive", "binary_scores", "all_positive"])
def test_exact_matches_sklearn_on_adversarial_scores(case):
    rng = np.random.default_rng(7)
    y = rng.random(500) < 0.3
    s = rng.integers(0, 4, 500).astype(np.float64) + y   # 5 distinct values
    if case == "constant":
        s = np.full(500, 0.25)
    elif case == "single_positive":
        y = np.zeros(500, bool)
        y[123] = True
        s = rng.random(500)
    elif case == "binary_scores":
        s = (rng.random(500) < 0.5) | (y & (rng.random(500) < 0.5))
        s = s.astype(np.float64)
    if case == "all_positive":
        y = np.ones(500, bool)
        assert math.isnan(auroc(s, y))                    # undefined: NaN, as sklearn >= 1.6
        with pytest.warns(UndefinedMetricWarning, match="one class"):
            assert math.isnan(skm.roc_auc_score(y, s))
        assert average_precision(s, y) == pytest.approx(skm.average_precision_score(y, s), abs=TOL)
        assert f1_max(s, y).f1 == pytest.approx(1.0)
        return
    check_exact_vs_sklearn(y, s)
    if case == "constant":
        assert auroc(s, y) == 0.5


def test_roc_curve_points_match_sklearn():
    rng = np.random.default_rng(3)
    y, s = rng.random(400) < 0.4, np.round(rng.random(400), 2)
    fpr, tpr, thr = roc_curve(s, y)
    sf, st_, sth = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sf, atol=1e-12)
    np.testing.assert_allclose(tpr, st_, atol=1e-12)
    np.testing.assert_allclose(thr[1:], sth[1:])


def test_no_positives_gives_nan_where_sklearn_warns():
    s, y = np.linspace(0, 1, 50), np.zeros(50, bool)
    assert math.isnan(auroc(s, y)) and math.isnan(average_precision(s, y))
    assert all(math.isnan(v) for v in f1_max(s, y))
    with pytest.warns(UserWarning, match="No positive class"):   # sklearn instead returns 0.0
        assert skm.average_precision_score(y, s) == 0.0


def test_image_metrics_match_sklearn():
    rng = np.random.default_rng(11)
    y = np.r_[np.zeros(10, bool), np.ones(30, bool)]
    s = np.round(rng.random(40) + 0.3 * y, 1)
    m = image_metrics(s, y)
    assert m.auroc == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    assert m.ap == pytest.approx(skm.average_precision_score(y, s), abs=TOL)
    assert math.isnan(m.aupro)


def test_pixel_metrics_pools_all_normal_images_as_negatives():
    maps, masks = random_maps(np.random.default_rng(5), n=6)
    assert not masks[2].any()                              # an all-normal image is in the pool
    m = pixel_metrics(maps, masks)
    y = np.concatenate([g.ravel() for g in masks])
    s = np.concatenate([x.ravel() for x in maps])
    assert m.n_neg == (~y).sum() and m.n_pos == y.sum()
    assert m.auroc == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    assert m.ap == pytest.approx(skm.average_precision_score(y, s), abs=TOL)
    assert m.f1_max == pytest.approx(sk_f1max(y, s), abs=TOL)
    # a pool of only normal images: every pixel metric is undefined (NaN), not an error
    only_normal = pixel_metrics([maps[2]], [masks[2]])
    assert math.isnan(only_normal.auroc) and math.isnan(only_normal.ap) and math.isnan(only_normal.aupro)
    assert only_normal.to_dict()["auroc"] is None


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        auroc([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="shape"):
        auroc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="0/1"):
        auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="equal"):
        PixelCurveAccumulator().update(np.zeros((4, 4)), np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="range"):
        PixelCurveAccumulator(range=(1.0, 1.0))


# ------------------------------------------------------------------------------------- AUPRO


def test_aupro_hand_computed_two_regions():
    # 4x4 image. Regions (8-connected): R1 = {(0,0), (0,1)} with scores 0.9, 0.4;
    # R2 = {(3,3)} with score 0.8. Normal pixels (13): one 0.85, one 0.5, eleven 0.1.
    # threshold  FP  FPR    PRO = mean(R1 overlap, R2 overlap)
    #   0.9      0   0      (1/2 + 0) / 2 = 0.25
    #   0.85     1   1/13   0.25
    #   0.8      1   1/13   (1/2 + 1) / 2 = 0.75
    #   0.5      2   2/13   0.75
    #   0.4      2   2/13   1.0
    #   0.1     13   1      1.0
    # Area for FPR in [0, 0.3]: 0.25 * 1/13 + 0.75 * 1/13 + 1.0 * (0.3 - 2/13) = 0.3 - 1/13
    # AUPRO = (0.3 - 1/13) / 0.3 = 1 - 10/39 = 29/39 = 0.743590
    s = np.full((4, 4), 0.1)
    g = np.zeros((4, 4), bool)
    g[0, 0] = g[0, 1] = g[3, 3] = True
    s[0, 0], s[0, 1], s[3, 3], s[1, 3], s[2, 0] = 0.9, 0.4, 0.8, 0.85, 0.5
    assert aupro([s], [g]) == pytest.approx(29 / 39, abs=1e-12)
    _, pro, n = pro_curve([s], [g])
    assert n == 2
    np.testing.assert_allclose(pro, [0, 0.25, 0.25, 0.75, 0.75, 1, 1, 1])
    binned = accumulate([s], [g], bins=64, range=(0, 1))
    assert binned.aupro == pytest.approx(29 / 39, abs=1e-12) and binned.aupro_bound == 0.0


def test_aupro_hand_computed_constant_map_and_diagonal_connectivity():
    # Constant scores: one threshold, the curve is the straight line (0,0)-(1,1);
    # area on [0, 0.3] = 0.3^2 / 2 = 0.045; AUPRO = 0.045 / 0.3 = 0.15.
    g = np.zeros((5, 5), bool)
    g[1, 1] = g[2, 2] = True        # diagonal neighbours: ONE region under 8-connectivity
    assert pro_curve([np.zeros((5, 5))], [g])[2] == 1
    assert aupro([np.full((5, 5), 3.0)], [g]) == pytest.approx(0.15, abs=1e-12)
    # Perfect map: PRO reaches 1 at FPR 0 -> AUPRO 1.
    assert aupro([g.astype(float)], [g]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(4))
def test_aupro_matches_brute_force_reference(seed):
    maps, masks = random_maps(np.random.default_rng(seed), ties=seed % 2 == 1)
    assert aupro(maps, masks) == pytest.approx(brute_force_aupro(maps, masks), abs=TOL)
    assert aupro(maps, masks, 0.05) == pytest.approx(brute_force_aupro(maps, masks, 0.05), abs=TOL)


# ---------------------------------------------------------------------------- binned bounds


@pytest.mark.parametrize("bins,range_", [(16, None), (16, (0.0, 1.6)), (1024, None), (65536, (0.0, 1.6))])
@pytest.mark.parametrize("seed", range(3))
def test_binned_within_stated_bound(seed, bins, range_):
    maps, masks = random_maps(np.random.default_rng(seed), n=5)
    exact, binned = pixel_metrics(maps, masks), accumulate(maps, masks, bins=bins, range=range_)
    assert_within_bounds(binned, exact)
    if bins == 65536:
        assert max(binned.auroc_bound, binned.ap_bound, binned.aupro_bound) < 1e-3


def test_binned_is_exact_when_each_bin_holds_one_value():
    maps, masks = random_maps(np.random.default_rng(1), ties=True)   # scores in {0, .25, ..., 1.5}
    exact, binned = pixel_metrics(maps, masks), accumulate(maps, masks, bins=64, range=(0, 2))
    for k in ("auroc", "ap", "f1_max", "f1_threshold", "aupro"):
        assert getattr(binned, k) == pytest.approx(getattr(exact, k), abs=1e-12)
    assert binned.auroc_bound == binned.ap_bound == binned.f1_bound == binned.aupro_bound == 0.0


def test_binned_constant_scores_and_single_positive_pixel():
    g = np.zeros((8, 8), bool)
    g[3, 4] = True
    const = accumulate([np.full((8, 8), 7.0)], [g])                  # adaptive, one value
    assert const.auroc == 0.5 and const.auroc_bound == 0.0
    assert const.ap == pytest.approx(1 / 64) and const.f1_threshold == 7.0
    s = np.random.default_rng(2).random((8, 8))
    exact, binned = pixel_metrics([s], [g]), accumulate([s], [g], bins=16, range=(0, 1))
    assert_within_bounds(binned, exact)
    assert exact.auroc == pytest.approx(skm.roc_auc_score(g.ravel(), s.ravel()), abs=TOL)


def test_masked_zeros_form_their_own_bin():
    # S * M maps: most pixels exactly 0. Bins are (a, b], so 0 is alone in its bin and the
    # large point mass adds nothing to the bounds (with [a, b) bins it would share one with the
    # smallest positive scores and the AUROC bound would be ~ 1/2 * p0 * n0 / (P * N)).
    rng = np.random.default_rng(6)
    maps, masks = random_maps(rng, n=4, shape=(40, 40))
    maps = [m * (rng.random(m.shape) < 0.3) for m in maps]
    assert np.mean([(m == 0).mean() for m in maps]) > 0.6
    exact = pixel_metrics(maps, masks)
    for range_ in ((0.0, 2.0), None):
        binned = accumulate(maps, masks, bins=4096, range=range_)
        assert_within_bounds(binned, exact)
        assert max(binned.auroc_bound, binned.ap_bound, binned.aupro_bound) < 1e-3


def test_binned_out_of_range_scores_keep_bounds_valid():
    maps, masks = random_maps(np.random.default_rng(4))
    maps = [m * 3 - 1 for m in maps]                                # about [-1, 3.8]
    acc = PixelCurveAccumulator(bins=256, range=(0.0, 1.0))
    for s, g in zip(maps, masks):
        acc.update(s, g)
    n_out = sum(int(((m < 0) | (m > 1)).sum()) for m in maps)
    assert acc.n_out_of_range == n_out > 0
    assert_within_bounds(acc.result(), pixel_metrics(maps, masks))


def test_adaptive_range_grows_and_merges():
    rng = np.random.default_rng(9)
    maps, masks = random_maps(rng, n=6)
    maps = [m * 10.0 ** (i - 3) - 5 * (i == 4) for i, m in enumerate(maps)]   # spans grow 1000x
    acc = PixelCurveAccumulator(bins=512)
    for s, g in zip(maps, masks):
        acc.update(s, g)
    span = max(m.max() for m in maps) - min(m.min() for m in maps)
    assert acc.bin_width <= 2 * span / (512 - 2)
    exact = pixel_metrics(maps, masks)
    assert_within_bounds(acc.result(), exact)
    # two halves accumulated separately (different grids) and merged = the same histograms
    a, b = PixelCurveAccumulator(bins=512), PixelCurveAccumulator(bins=512)
    for i, (s, g) in enumerate(zip(maps, masks)):
        (a if i % 2 else b).update(s, g)
    a_before = a.result()
    merged = a.copy().merge(b).result()
    assert a.result() == a_before                      # copy() is independent of the original
    merged_in_place = a.merge(b).result()
    assert merged == merged_in_place
    whole = acc.result()
    assert merged.n_pos == whole.n_pos and merged.n_neg == whole.n_neg and merged.n_regions == whole.n_regions
    assert_within_bounds(merged, exact)
    fixed = [PixelCurveAccumulator(bins=128, range=(-5, 5)) for _ in range(2)]
    fixed[0].update(maps[0], masks[0])
    fixed[1].update(maps[1], masks[1])
    fixed[0] += fixed[1]
    assert fixed[0].result() == accumulate(maps[:2], masks[:2], bins=128, range=(-5, 5))
    with pytest.raises(ValueError, match="different"):
        a.merge(fixed[0])


def test_binned_curves_for_plotting():
    maps, masks = random_maps(np.random.default_rng(0))
    acc = PixelCurveAccumulator(bins=64, range=(0, 2))
    for s, g in zip(maps, masks):
        acc.update(s, g)
    fpr, tpr, _ = acc.roc_curve()
    precision, recall, thr = acc.precision_recall_curve()
    pf, pp = acc.pro_curve()
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.all(np.diff(thr) < 0)
    assert np.all(np.diff(recall) >= 0) and np.all((precision > 0) & (precision <= 1))
    assert pf[0] == pp[0] == 0 and pf[-1] == pp[-1] == 1 and np.all(np.diff(pf) >= 0)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_binned_bound_holds_on_arbitrary_small_inputs(data):
    h, w = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    n = h * w
    values = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e3, 1e3, allow_nan=False, width=32))
    s = np.array(data.draw(st.lists(values, min_size=n, max_size=n)), np.float32).reshape(h, w)
    g = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n))).reshape(h, w)
    g.flat[data.draw(st.integers(0, n - 1))] = True
    bins = data.draw(st.sampled_from([16, 17, 100]))
    exact = pixel_metrics([s], [g])
    for range_ in (None, (-2.0, 2.0)):
        binned = accumulate([s], [g], bins=bins, range=range_)
        if g.all():
            assert math.isnan(binned.auroc) and math.isnan(exact.auroc) and math.isnan(binned.aupro)
            continue
        assert_within_bounds(binned, exact)


# ------------------------------------------------------------------------------- masks


def test_iou_and_dice():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[0, :2] = True                     # 2 px
    b[0, 1:4] = True                    # 3 px, 1 px shared
    assert iou(a, b) == pytest.approx(1 / 4) and dice(a, b) == pytest.approx(2 / 5)
    assert iou(a, a) == dice(a, a) == 1.0
    empty = np.zeros((4, 4), bool)
    assert iou(empty, empty) == dice(empty, empty) == 1.0        # empty vs empty: defined as 1
    assert math.isnan(iou(empty, empty, empty=float("nan")))
    assert iou(a, empty) == dice(empty, a) == 0.0
    with pytest.raises(ValueError, match="shape"):
        iou(a, np.zeros((3, 4), bool))


def test_mean_defined_skips_nan():
    assert mean_defined([0.5, float("nan"), 1.0]) == (0.75, 2, 1)
    m = mean_defined([float("nan")])
    assert math.isnan(m.mean) and m.n == 0 and m.n_undefined == 1


def test_metrics_import_is_numpy_only():
    code = ("import sys, zsas_gui.core.metrics; "
            "bad = [m for m in ('torch', 'sklearn', 'PySide6', 'cv2') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
