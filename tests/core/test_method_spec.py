"""Issue 13: the method as ALGORITHM.md specifies it. Each test is written from a review finding's
reproduction (per-component negatives, tiny-region prototype, d_min_neg, the stage-3 box, the
score map of gated and ungated images)."""

import numpy as np
import pytest

from zsas_gui.core.frames import image_to_sam_grid, sam_grid_to_image
from zsas_gui.core.method.per_component import group_by_component, per_component_prompts
from zsas_gui.core.method.ppg import feature_similarity, generate_prompts
from zsas_gui.core.method.refine import iter_cascade, score_map
from zsas_gui.core.types import MethodParams, Prompts


def two_regions_8px_apart():
    """S (256, 256) with region A (S = 1.0) and region B (S = 0.9) 8 px apart, and SAM-like
    features (8, 16, 16) over a 256 square: A's cells point one way (e1), the rest another (e0),
    so everything of A is the least similar to B's prototype."""
    S = np.zeros((256, 256), np.float32)
    S[100:140, 80:110] = 1.0     # A: x 80..109
    S[100:140, 118:148] = 0.9    # B: x 118..147, 8 px right of A
    F = np.zeros((8, 16, 16), np.float32)
    F[0] = 1.0
    F[:, 6:9, 5:7] = 0.0         # cells over A (x 80..111)
    F[1, 6:9, 5:7] = 1.0
    return S, F


def test_per_component_negatives_never_land_on_another_region():
    S, F = two_regions_8px_apart()
    params = MethodParams(per_component=True, k_pos=1, k_neg=3, d_min_1024=0, d_min_neg_1024=0,
                          ring_1024=100, min_area_frac=0.0)
    ppg = per_component_prompts(S, 0.9, params, F, long_side=256)
    p = ppg.prompts
    xy = p.points.astype(int)
    region = S > 0
    neg = p.labels == 0
    assert neg.sum() == 6                                    # 3 per component, both components
    assert not region[xy[neg, 1], xy[neg, 0]].any()          # no negative on any anomaly
    assert not (ppg.ring & region).any()
    # every point keeps the index of the component it was made for: 0 = A (larger), 1 = B
    assert p.components is not None
    for comp, (x0, x1) in enumerate(((80, 110), (118, 148))):
        pos = p.points[(p.components == comp) & (p.labels == 1)]
        assert len(pos) == 1 and x0 <= pos[0, 0] < x1
        assert (p.components[neg] == comp).sum() == 3


def test_per_component_groups_follow_the_component_index_not_the_distance():
    S, F = two_regions_8px_apart()
    params = MethodParams(per_component=True, k_pos=1, k_neg=3, d_min_1024=0, d_min_neg_1024=0,
                          ring_1024=100, min_area_frac=0.0)
    p = per_component_prompts(S, 0.9, params, F, long_side=256).prompts
    groups = group_by_component(p, S, params, S.shape)
    assert len(groups) == 2
    for comp, g in enumerate(groups):
        mine = p.components == comp
        np.testing.assert_array_equal(g.points, p.points[mine])
        np.testing.assert_array_equal(g.labels, p.labels[mine])


def test_user_prompts_without_component_index_are_grouped_by_nearest_region():
    S, _ = two_regions_8px_apart()
    params = MethodParams(per_component=True, min_area_frac=0.0)
    user = Prompts([[90, 120], [130, 120], [60, 120]], [1, 1, 0])
    groups = group_by_component(user, S, params, S.shape)
    assert [len(g) for g in groups] == [2, 1]                # the negative goes to A, the nearest


def similarity_to_cell(F, cell, hw, long_side):
    """What feature_similarity must return when the prototype is the one cell ``(row, col)``."""
    proto = F[:, cell[0], cell[1]]
    Fn = F / np.maximum(np.linalg.norm(F, axis=0, keepdims=True), 1e-12)
    return sam_grid_to_image(np.tensordot(proto / np.linalg.norm(proto), Fn, axes=1), hw, long_side)


def test_tiny_region_prototype_is_the_peak_cell_not_the_whole_image():
    """A one-pixel region of a 3072-px wide image vanishes on the 64x64 grid (SAM's resize by 3
    skips it: cover 0 everywhere); the prototype must be the cell holding S's maximum, not the
    mean of all 4096 cells."""
    rng = np.random.default_rng(0)
    g, long_side, hw = 64, 1024, (300, 3072)
    F = rng.normal(size=(8, g, g)).astype(np.float32)
    region = np.zeros(hw, bool)
    region[150, 3000] = True
    assert image_to_sam_grid(region.astype(np.float32), g, long_side).max() == 0   # the reproduction
    sim = feature_similarity(F, region, long_side, region.astype(np.float32))
    # (x, y) = (3000, 150) is (1000, 50) in SAM's frame: cell (row 3, col 62)
    np.testing.assert_allclose(sim, similarity_to_cell(F, (3, 62), hw, long_side), atol=1e-5)


def test_prototype_uses_cells_covered_at_least_half():
    rng = np.random.default_rng(1)
    g, long_side = 16, 256
    F = rng.normal(size=(4, g, g)).astype(np.float32)
    region = np.zeros((256, 256), bool)
    region[64:80, 80:98] = True           # all of cell (4, 5), 2 of 16 columns of cell (4, 6)
    sim = feature_similarity(F, region, long_side, region.astype(np.float32))
    np.testing.assert_allclose(sim, similarity_to_cell(F, (4, 5), (256, 256), long_side), atol=1e-5)


def test_negatives_have_their_own_spacing():
    """k_neg = 3 on a small ring: the positives' 400 px spacing left one negative."""
    S = np.zeros((1024, 1024), np.float32)
    S[500:530, 500:530] = 1.0
    params = MethodParams(k_pos=1, k_neg=3, negative_rule="lowest_score", d_min_1024=400,
                          d_min_neg_1024=64, ring_1024=100)
    p = generate_prompts(S, 0.9, params).prompts
    neg = p.points[p.labels == 0]
    assert len(neg) == 3
    d = np.linalg.norm(neg[:, None] - neg[None], axis=-1)[np.triu_indices(3, 1)]
    assert (d >= 64).all()


class RecordingDecoder:
    """A MaskDecoder double: the box each call received; masks from a fixed template."""

    def __init__(self, mask):
        self.mask, self.boxes = mask, []

    def decode(self, points, labels, box, mask_input, multimask):
        self.boxes.append(box)
        n = 3 if multimask else 1
        return (np.stack([self.mask] * n), np.linspace(0.9, 0.5, n).astype(np.float32),
                np.zeros((n, 8, 8), np.float32))


def test_stage3_box_is_inclusive_and_inside_the_image():
    mask = np.zeros((600, 900), bool)
    mask[:, :] = True                                  # M2 covers the whole 900 x 600 image
    dec = RecordingDecoder(mask)
    stages = list(iter_cascade(dec, Prompts([[450, 300]], [1])))
    np.testing.assert_array_equal(stages[2].box, [0, 0, 899, 599])
    np.testing.assert_array_equal(dec.boxes[2], [0, 0, 899, 599])
    part = np.zeros((600, 900), bool)
    part[10:21, 30:41] = True
    dec = RecordingDecoder(part)
    stages = list(iter_cascade(dec, Prompts([[35, 15]], [1])))
    np.testing.assert_array_equal(stages[2].box, [30, 10, 40, 20])


def test_score_map_uses_the_raw_map_and_zero_outside_the_mask():
    raw = np.array([[0.2, 0.4], [0.6, 0.8]], np.float32)
    m3 = np.array([[True, False], [False, False]])
    np.testing.assert_allclose(score_map(raw, m3), [[0.2, 0], [0, 0]])
    np.testing.assert_allclose(score_map(raw, m3, outside_weight=0.25), [[0.2, 0.1], [0.15, 0.2]])
    np.testing.assert_array_equal(score_map(raw, np.zeros((2, 2), bool)), np.zeros((2, 2)))
    np.testing.assert_allclose(score_map(raw, np.zeros((2, 2), bool), outside_weight=0.5), raw * 0.5)


def test_gated_image_scores_zero_and_ungated_scores_the_raw_map(tiny_pipeline):
    from synthetic import blob_image

    image = blob_image((64, 96), [(30, 30)])
    gated = tiny_pipeline.run("s", image, MethodParams(gate=1.0))
    assert gated.gated and not gated.score_map.any()
    ungated = tiny_pipeline.run("s", image, MethodParams(min_area_frac=0.0))
    raw = ungated.anomaly.anomaly_map
    np.testing.assert_allclose(ungated.score_map, raw * ungated.pred_mask, atol=0)
    # the raw map is an abnormal probability averaged over depths: in [0, 1]
    assert 0.0 <= raw.min() and raw.max() <= 1.0


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_outside_weight_is_checked(bad):
    with pytest.raises(ValueError, match="outside_weight"):
        MethodParams(outside_weight=bad)


def test_map_settings_change_the_map_and_are_recorded(tiny_pipeline):
    """Every "(chosen)" value of §1 is settable (MethodParams.clip_map) and recorded."""
    from synthetic import blob_image

    from zsas_gui.core.errors import ZsasError
    from zsas_gui.core.types import MapSettings

    image = blob_image((64, 64), [(20, 20)])
    base = tiny_pipeline.run("m", image, MethodParams())
    assert base.provenance["anomaly_map"]["vv_start"] == 0
    assert base.provenance["anomaly_map"]["depths"] == [0, 1, 2]
    assert len(base.provenance["checkpoints"]["clip"]) == 64
    params = MethodParams(clip_map=MapSettings(vv_start=1, depths=(1, 2), temperature=0.5, blur_sigma_518=0))
    other = tiny_pipeline.run("m", image, params)
    info = other.provenance["anomaly_map"]
    assert (info["vv_start"], info["depths"], info["temperature"], info["blur_sigma_518"]) == (1, [1, 2], 0.5, 0)
    assert other.provenance["params"]["clip_map"]["depths"] == [1, 2]
    assert not np.allclose(base.anomaly.anomaly_map, other.anomaly.anomaly_map)
    assert tiny_pipeline.encoder_calls["clip"] == 2          # other depths: other tokens
    assert MethodParams.from_dict(other.provenance["params"]) == params
    with pytest.raises(ZsasError, match="before vv_start 2"):
        tiny_pipeline.run("m", image, MethodParams(clip_map=MapSettings(vv_start=2, depths=(1, 2))))


@pytest.mark.parametrize("bad", [{"vv_start": float("inf")}, {"vv_start": 1.5}, {"depths": "12"},
                                 {"depths": []}, {"depths": [True]}, {"temperature": 0},
                                 {"temperature": "x"}, {"blur_sigma_518": float("nan")}])
def test_map_settings_from_any_json_are_checked(bad):
    from zsas_gui.core.types import MapSettings

    with pytest.raises(ValueError):
        MethodParams.from_dict({"clip_map": {**MapSettings().to_dict(), **bad}})
