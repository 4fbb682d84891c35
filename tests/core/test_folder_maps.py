"""Folder maps (ALGORITHM.md §1b) on synthetic folders: mutual and references find a blob, a
pattern shared by every image stays low, results are deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import BACKGROUND, BLOB, STRIPE, part, region

from zsas_gui.core.errors import ZsasError
from zsas_gui.core.maps.backbones import TimmBackbone
from zsas_gui.core.maps.mutual import MutualMapper, choose_others, interval_mean
from zsas_gui.core.maps.references import ReferenceMapper, coreset_indices


@pytest.fixture(scope="module")
def backbone():
    """A real timm ResNet-18 with seeded random weights at 64 px (8 x 8 patches)."""
    return TimmBackbone("resnet18", "random", image_size=64, depths=(2, 3))


@pytest.fixture(scope="module")
def folder(backbone):
    """Eight parts; part 2 has the blob. (images, features)."""
    images = [part(i, blob=(i == 2)) for i in range(8)]
    return images, [backbone.extract(x) for x in images]


def test_mutual_blob_in_one_image_scores_high(backbone, folder):
    _, feats = folder
    m = MutualMapper(backbone)
    m.fit(feats)
    results = [m.anomaly(f) for f in feats]
    blob = region(results[2].anomaly_map, BLOB)
    assert blob > 1.4 * max(region(r.anomaly_map, BLOB) for i, r in enumerate(results) if i != 2)
    assert blob > 1.4 * region(results[2].anomaly_map, BACKGROUND)
    scores = [r.image_score for r in results]
    assert int(np.argmax(scores)) == 2
    assert all(0.0 <= s < 1.0 for s in scores)
    assert m.info()["folder_images"] == 8 and m.info()["others_per_image"] == 7


def test_mutual_pattern_in_every_image_scores_low(backbone, folder):
    _, feats = folder
    m = MutualMapper(backbone)
    m.fit(feats)
    for f in feats:
        amap = m.anomaly(f).anomaly_map
        # the stripe is in every image at the same place: no higher than the plain texture
        assert region(amap, STRIPE) < 1.1 * region(amap, BACKGROUND)


def test_interval_average_keeps_a_defect_repeated_in_a_few_images(backbone):
    """Two of eight images share the blob: the plain nearest-image score misses it (the twin
    has it too), the 30 % interval average keeps it."""
    feats = [backbone.extract(part(i, blob=i in (2, 5))) for i in range(8)]
    plain, interval = MutualMapper(backbone, radii=(1,), fraction=0.0), MutualMapper(backbone)
    plain.fit(feats)
    interval.fit(feats)

    def contrast(m):
        amap = m.anomaly(feats[2]).anomaly_map
        return region(amap, BLOB) / region(amap, BACKGROUND)

    assert contrast(interval) > 1.3
    assert contrast(interval) > contrast(plain) + 0.2


def test_references_from_the_defect_free_twin_find_the_blob(backbone):
    refs = [backbone.extract(part(100 + i)) for i in range(4)]
    m = ReferenceMapper(backbone)
    m.fit(refs)
    with_blob = m.anomaly(backbone.extract(part(7, blob=True)))
    twin = m.anomaly(backbone.extract(part(7)))
    assert region(with_blob.anomaly_map, BLOB) > 1.4 * region(twin.anomaly_map, BLOB)
    assert with_blob.image_score > twin.image_score
    # calibrated on the references: a normal part sits near the 0.5 gate, the defect above it
    assert with_blob.image_score > 0.5
    assert m.info()["references"] == 4 and m.info()["bank_patches"] == 4 * 64


def test_a_reference_is_scored_against_the_others_only(backbone):
    refs = [backbone.extract(part(100 + i)) for i in range(3)]
    m = ReferenceMapper(backbone)
    m.fit(refs)
    assert m.anomaly(refs[0]).anomaly_map.min() > 0.05      # not zero: its own patches excluded
    single = ReferenceMapper(backbone)
    single.fit(refs[:1])
    with pytest.raises(ZsasError, match="another good image"):
        single.anomaly(refs[0])


def test_results_are_deterministic_for_a_seed(backbone, folder):
    _, feats = folder
    a, b = MutualMapper(backbone, max_others=3, seed=7), MutualMapper(backbone, max_others=3, seed=7)
    a.fit(feats)
    b.fit(feats)
    for f in feats:
        np.testing.assert_array_equal(a.anomaly(f).anomaly_map, b.anomaly(f).anomaly_map)
    assert a.state_key == b.state_key
    assert choose_others(8, 3, 7) == choose_others(8, 3, 7)
    assert choose_others(8, 3, 7) != choose_others(8, 3, 8)
    assert all(len(o) == 3 and i not in o for i, o in enumerate(choose_others(8, 3, 7)))
    assert MutualMapper(backbone, max_others=3, seed=8).state_key != MutualMapper(backbone, max_others=3, seed=7).state_key


def test_an_image_outside_the_folder_is_scored_against_the_folder(backbone, folder):
    _, feats = folder
    m = MutualMapper(backbone)
    m.fit([f for i, f in enumerate(feats) if i != 2])
    amap = m.anomaly(feats[2]).anomaly_map
    assert region(amap, BLOB) > 1.4 * region(amap, BACKGROUND)


def test_interval_mean_takes_the_smallest_fraction():
    d = torch.tensor([[[1.0, 5.0]], [[2.0, 6.0]], [[3.0, 7.0]], [[4.0, 8.0]]])   # (M=4, V=1, P=2)
    assert interval_mean(d, 0.0).tolist() == [1.0, 5.0]
    assert interval_mean(d, 0.5).tolist() == [1.5, 5.5]
    assert interval_mean(d, 1.0).tolist() == [2.5, 6.5]


def test_coreset_keeps_spread_points():
    g = torch.Generator().manual_seed(0)
    clusters = torch.cat([torch.randn(200, 8, generator=g) * 0.01 + c for c in (0.0, 5.0, -5.0)])
    keep = coreset_indices(clusters, 6, seed=0)
    assert len(keep) == 6 and len(set(keep.tolist())) == 6
    assert {int(i) // 200 for i in keep} == {0, 1, 2}       # every cluster kept


def test_coreset_bank_is_capped(backbone, folder):
    _, feats = folder
    m = ReferenceMapper(backbone, max_bank=100)
    m.fit(feats[:4])
    assert m.bank_patches == 100


def test_absolute_scale_is_one_scale_across_the_folder(backbone, folder):
    _, feats = folder
    m = MutualMapper(backbone, absolute=True)
    m.fit(feats)
    r = m.anomaly(feats[2])
    assert r.scale == pytest.approx(2 * m.pixel_level)
    np.testing.assert_allclose(r.normalized, np.clip(r.anomaly_map / r.scale, 0, 1), rtol=1e-6)
    normal = m.anomaly(feats[0])
    # per-image min-max would stretch the normal image to 1; the folder scale does not
    assert normal.normalized.max() < 0.75 and r.normalized.max() > normal.normalized.max()


def test_cnn_input_keeps_the_aspect_ratio_and_mixed_shapes_compare(backbone):
    wide = np.ascontiguousarray(part(1)[:40])                  # (40, 96): aspect 2.4
    f = backbone.extract(wide)
    assert f.frame_hw == (32, 64) and f.grid == (4, 8) and f.hw == (40, 96)
    feats = [backbone.extract(x) for x in (wide, part(2), part(3), part(4, blob=True))]
    # plain distances: with 4 images each spread comes from 3 (D40), which lowers this blob's
    # contrast to 1.2x; the density normalisation is tested on the 8-image folder
    m = MutualMapper(backbone, density=False)
    m.fit(feats)
    assert m.anomaly(feats[0]).anomaly_map.shape == (40, 96)
    blob = m.anomaly(feats[3]).anomaly_map
    assert region(blob, BLOB) > 1.3 * region(blob, BACKGROUND)
    square = TimmBackbone("resnet18", "random", image_size=64, depths=(2, 3), keep_aspect=False)
    assert square.extract(wide).frame_hw == (64, 64) and square.model_id != backbone.model_id
