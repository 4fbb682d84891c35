"""Folder maps (ALGORITHM.md §1b): the patch distance. CNN stages are compared by raw Euclidean
distance (docs/decisions.md D39), ViT tokens by cosine; on synthetic patch features where the two
disagree, and the choice per backbone."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from zsas_gui.core.maps.backbones import ClipTowerBackbone, TimmBackbone
from zsas_gui.core.maps.mutual import MutualMapper
from zsas_gui.core.maps.patch_features import PatchFeatures, preferred_distance
from zsas_gui.core.maps.references import ReferenceMapper

SYNTHETIC = SimpleNamespace(model_id="synthetic", device="cpu", info=dict)
GRID = (4, 4)


def features(layer: torch.Tensor) -> PatchFeatures:
    """(C, 4, 4) float32 -> one-depth patch features of a 4 x 4 image (one pixel per patch)."""
    return PatchFeatures(layers=(layer.to(torch.float16),), grid=GRID, hw=GRID, image_size=4, input_hw=GRID)


def folder(strong_patch: bool, seed: int = 0) -> list[PatchFeatures]:
    """Six images of one texture direction (norm ~5, small noise); image 3's patch (1, 1) has the
    same direction but three times the strength when ``strong_patch``."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0)
    out = []
    for i in range(6):
        layer = 5 * direction[:, None, None] + 0.05 * torch.randn(16, *GRID, generator=g)
        if strong_patch and i == 3:
            layer[:, 1, 1] *= 3.0
        out.append(features(layer))
    return out


def grids(distance: str, feats: list[PatchFeatures]) -> list[np.ndarray]:
    m = MutualMapper(SYNTHETIC, radii=(1,), distance=distance, search="float32")
    m.fit(feats)
    return [m.score_grid(f) for f in feats]


def test_euclidean_finds_a_patch_of_the_right_direction_but_the_wrong_strength():
    """Cosine compares directions only: a patch three times as strong as the texture is invisible
    to it; the raw Euclidean distance ranks it first in the folder."""
    feats = folder(strong_patch=True)
    euc = grids("euclidean", feats)
    others = max(float(g.max()) for i, g in enumerate(euc) if i != 3)
    assert float(euc[3][1, 1]) > 10 * others
    cos = grids("cosine", feats)
    assert float(cos[3][1, 1]) < 2 * np.median(np.stack(cos))


def test_euclidean_ignores_the_random_directions_of_flat_weak_patches():
    """Flat, weak regions (tiny activations of random direction) are noise to the cosine distance,
    which scores them as high as a real defect; by Euclidean distance they stay low."""
    g = torch.Generator().manual_seed(1)
    direction = torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0)
    feats = []
    for i in range(6):
        layer = 5 * direction[:, None, None] + 0.05 * torch.randn(16, *GRID, generator=g)
        layer[:, :, :2] = 0.01 * torch.randn(16, 4, 2, generator=g)       # flat left half
        if i == 3:
            layer[:, 2, 3] = 5 * torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0)
        feats.append(features(layer))
    for distance, defect_first in (("euclidean", True), ("cosine", False)):
        g3 = grids(distance, feats)[3]
        flat = float(g3[:, :2].max())
        assert (float(g3[2, 3]) > 2 * flat) == defect_first, (distance, g3)


def test_the_distance_follows_the_backbone_and_is_part_of_the_state(tiny_bundles):
    cnn = TimmBackbone("resnet18", "random", image_size=64, depths=(2, 3))
    assert cnn.patch_distance == "euclidean" and cnn.info()["patch_distance"] == "euclidean"
    assert preferred_distance(ClipTowerBackbone(tiny_bundles[0])) == "cosine"
    assert preferred_distance(SYNTHETIC) == "cosine"
    for make in (MutualMapper, ReferenceMapper):
        auto, cos = make(cnn), make(cnn, distance="cosine")
        assert auto.distance == "euclidean" and auto.info()["distance"] == "euclidean"
        assert auto.state_key != cos.state_key
        with pytest.raises(ValueError, match="distance"):
            make(cnn, distance="manhattan")


def test_references_by_euclidean_distance_in_bfloat16_match_float32():
    refs, query = folder(False, seed=2), folder(True, seed=2)[3]
    maps = []
    for search in ("float32", "bfloat16"):
        m = ReferenceMapper(SYNTHETIC, radii=(1, 3), distance="euclidean", search=search, density=False)
        m.fit(refs)
        maps.append(m.score_grid(query))
    exact, fast = maps
    assert np.abs(exact - fast).max() < 0.02 * exact.max()
    assert np.unravel_index(fast.argmax(), GRID) == (1, 1)


def test_an_uncalibrated_euclidean_image_score_stays_below_one_and_keeps_the_order():
    m = ReferenceMapper(SYNTHETIC, radii=(1,), distance="euclidean")
    m.fit(folder(False)[:1])                 # one reference: nothing to calibrate on
    assert m.image_level is None
    low, high = m.image_score(3.0), m.image_score(30.0)
    assert 0.0 < low < high < 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pair_nearest_matches_torch_max_both_ways_ties_to_the_first(dtype):
    """pair_nearest takes values with amax and indices with numpy's argmax (speed); both must be
    torch.max's, ties (duplicated bank rows) going to the first index."""
    from zsas_gui.core.maps.patch_features import as_bank, as_query, pair_nearest

    g = torch.Generator().manual_seed(3)
    rows = torch.randn(30, 16, generator=g)
    bank_rows = torch.cat([torch.randn(10, 16, generator=g), rows[:5], rows[:5]])   # duplicates
    q, b = as_query(as_bank(rows, dtype)), as_bank(bank_rows, dtype)
    (rd, ri), (cd, ci) = pair_nearest(q, b)
    s = (q @ b.T).float()
    assert torch.equal(ri, s.max(dim=1).indices) and torch.equal(ci, s.max(dim=0).indices)
    assert torch.equal(ri[:5], torch.arange(10, 15))       # the first of the two duplicates
    torch.testing.assert_close(rd, (-s.amax(dim=1)).clamp_min(0).sqrt())
    torch.testing.assert_close(cd, (-s.amax(dim=0)).clamp_min(0).sqrt())
    (_, none_r), (_, none_c) = pair_nearest(q, b, with_index=False)
    assert none_r is None and none_c is None
