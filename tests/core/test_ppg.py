"""PPG on synthetic maps: positives land on the blobs, negatives in the ring."""

import numpy as np
import pytest

from zsas_gui.core.method.ppg import (
    extreme_region,
    feature_similarity,
    generate_prompts,
    region_components,
    ring_around,
    spaced_extrema,
)
from zsas_gui.core.types import MethodParams


def gaussian_map(hw, centers, sigma=6.0):
    yy, xx = np.mgrid[: hw[0], : hw[1]].astype(np.float32)
    S = np.zeros(hw, np.float32)
    for (cx, cy), amp in centers:
        S += amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return S / S.max()


def test_positives_land_on_blob_maxima_with_spacing():
    hw = (256, 256)
    S = gaussian_map(hw, [((60, 50), 1.0), ((200, 190), 0.9), ((64, 54), 0.95)])
    # d_min = 100 px in a 256-px image -> 400 in the 1024 frame
    params = MethodParams(tau=0.5, k_pos=3, d_min_1024=400, k_neg=0, negative_rule="lowest_score")
    r = generate_prompts(S, 0.9, params)
    pos = r.prompts.points[r.prompts.labels == 1]
    assert len(pos) == 2                      # the third blob is closer than d_min to the first
    np.testing.assert_allclose(pos[0], [61, 51], atol=3)
    np.testing.assert_allclose(pos[1], [200, 190], atol=2)
    assert r.prompts.scores[0] == pytest.approx(1.0)


def test_spaced_extrema_order_and_exact_spacing():
    v = np.zeros((1, 10), np.float32)
    v[0, [0, 3, 4, 9]] = [5, 4, 3, 2]
    pts, vals = spaced_extrema(v, np.ones_like(v, bool), k=4, d_min=3)
    np.testing.assert_array_equal(pts[:, 0], [0, 3, 9, 6])   # 4 is < 3 px from 3; 6 is exactly 3 from 3/9
    np.testing.assert_array_equal(vals[:3], [5, 4, 2])


def test_negatives_lie_in_ring_and_pick_least_similar_side():
    hw, long_side, g = (128, 128), 128, 16
    S = gaussian_map(hw, [((64, 64), 1.0)], sigma=8)
    params = MethodParams(tau=0.5, k_pos=1, k_neg=2, d_min_1024=0, ring_1024=200)
    # SAM-like features: every cell like the blob (e_0), except the right half (e_1)
    F = np.zeros((8, g, g), np.float32)
    F[0] = 1.0
    F[:, :, 9:] = 0.0
    F[1, :, 9:] = 1.0
    r = generate_prompts(S, 0.9, params, features=F, long_side=long_side)
    neg = r.prompts.points[r.prompts.labels == 0].astype(int)
    assert len(neg) == 2
    assert r.ring[neg[:, 1], neg[:, 0]].all()
    assert not r.region[neg[:, 1], neg[:, 0]].any()
    assert (neg[:, 0] > 72).all()             # the dissimilar (right) side of the ring
    assert r.similarity.shape == hw and r.similarity.dtype == np.float32


def test_lowest_score_rule_and_ring_shape():
    hw = (100, 100)
    S = gaussian_map(hw, [((50, 50), 1.0)], sigma=6)
    S[50, 30:40] -= 0.0  # keep symmetric
    params = MethodParams(tau=0.5, k_pos=1, k_neg=1, ring_1024=150, negative_rule="lowest_score")
    r = generate_prompts(S, 0.5, params)
    R = extreme_region(S, 0.5) > 0
    np.testing.assert_array_equal(r.region, R)
    np.testing.assert_array_equal(r.ring, ring_around(R, 150 * 100 / 1024))
    (x, y), = r.prompts.points[r.prompts.labels == 0].astype(int)
    assert S[y, x] == pytest.approx(S[r.ring].min())
    assert r.similarity is None


def test_gate_and_flat_map_give_no_prompts():
    S = gaussian_map((64, 64), [((30, 30), 1.0)])
    gated = generate_prompts(S, 0.2, MethodParams(gate=0.5))
    assert gated.gated and len(gated.prompts) == 0
    flat = generate_prompts(np.zeros((64, 64), np.float32), 0.9, MethodParams())
    assert not flat.gated and len(flat.prompts) == 0 and not flat.region.any()


def test_similarity_needs_features():
    S = gaussian_map((64, 64), [((30, 30), 1.0)])
    with pytest.raises(ValueError, match="embedding"):
        generate_prompts(S, 0.9, MethodParams(k_neg=1, ring_1024=200))


def test_feature_similarity_is_one_on_uniform_features():
    F = np.ones((4, 16, 16), np.float32)
    region = np.zeros((64, 64), bool)
    region[10:12, 10:12] = True
    sim = feature_similarity(F, region, 256, region.astype(np.float32))
    np.testing.assert_allclose(sim, 1.0, atol=1e-5)


def test_region_components_largest_first_and_min_area():
    S = np.zeros((50, 50), np.float32)
    S[5:10, 5:10] = 1.0
    S[30:45, 30:45] = 0.9
    S[20, 45] = 0.8
    comps = region_components(S, 0.5, min_area_px=4)
    assert [int(c.sum()) for c in comps] == [225, 25]
