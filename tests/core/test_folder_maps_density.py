"""Folder maps (ALGORITHM.md §1b): distances relative to the local spread of normal patches
(docs/decisions.md D40), on synthetic patch features where plain distances rank wrongly."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from zsas_gui.core.maps.density import SPREAD_FLOOR, Spreads, floor_all, relative
from zsas_gui.core.maps.mutual import MutualMapper
from zsas_gui.core.maps.patch_features import PatchFeatures
from zsas_gui.core.maps.references import ReferenceMapper

SYNTHETIC = SimpleNamespace(model_id="synthetic", device="cpu", info=dict)
GRID = (4, 4)


def two_textures(n: int, defect: int | None, seed: int = 0) -> list[PatchFeatures]:
    """``n`` one-depth 4 x 4 images: the left half a tight texture (noise 0.02 around one
    vector), the right half a loose one (noise 1.0 around another); in image ``defect`` patch
    (1, 1) of the tight half is moved by 0.5 -- farther than its neighbours are from each other,
    nearer than loose patches are from theirs."""
    tight, loose = 5 * torch.nn.functional.normalize(torch.randn(2, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    g = torch.Generator().manual_seed(100 + seed)                       # the noise
    out = []
    for i in range(n):
        layer = torch.empty(16, *GRID)
        layer[:, :, :2] = tight[:, None, None] + 0.02 * torch.randn(16, 4, 2, generator=g)
        layer[:, :, 2:] = loose[:, None, None] + 1.0 * torch.randn(16, 4, 2, generator=g) / 4
        if i == defect:
            layer[:, 1, 1] += 0.5 * torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0)
        out.append(PatchFeatures(layers=(layer.to(torch.float16),), grid=GRID, hw=GRID, image_size=4,
                                 input_hw=GRID))
    return out


def first(grid: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(grid.argmax(), grid.shape))


@pytest.mark.parametrize("kind", ["mutual", "references"])
def test_a_small_change_in_a_tight_texture_outranks_the_spread_of_a_loose_one(kind):
    folder = two_textures(10, defect=3)
    grids = {}
    for density in (False, True):
        if kind == "mutual":
            m = MutualMapper(SYNTHETIC, radii=(1,), distance="euclidean", search="float32", density=density)
            m.fit(folder)
            grids[density] = m.score_grid(folder[3])
        else:
            m = ReferenceMapper(SYNTHETIC, radii=(1,), distance="euclidean", search="float32", density=density)
            m.fit(two_textures(8, defect=None, seed=1))
            grids[density] = m.score_grid(folder[3])
    assert first(grids[False])[1] >= 2                  # plain: a loose-texture patch ranks first
    assert first(grids[True]) == (1, 1)                 # relative: the defect
    assert grids[True][1, 1] > 3 * np.median(grids[True])


def test_spreads_never_use_the_scored_image():
    # 3 patches, 1 view; distances to images 7, 8, 9
    d = torch.tensor([[[1.0, 5.0, 2.0]], [[3.0, 4.0, 2.5]], [[2.0, 6.0, 0.5]]])
    s = Spreads.from_distances(d, [7, 8, 9])
    torch.testing.assert_close(s.first, torch.tensor([[1.0, 4.0, 0.5]]))
    assert s.owner.tolist() == [[7, 8, 9]]
    torch.testing.assert_close(s.excluding(None), s.first)
    torch.testing.assert_close(s.excluding(7), torch.tensor([[2.0, 4.0, 0.5]]))
    torch.testing.assert_close(s.excluding(9), torch.tensor([[1.0, 4.0, 2.0]]))
    one = Spreads.from_distances(d[:1], [7])
    torch.testing.assert_close(one.excluding(7), one.first)          # nothing else to use
    idx = torch.tensor([[2, 0]])
    torch.testing.assert_close(relative(torch.tensor([[1.0, 3.0]]), idx, s.excluding(9)),
                               torch.tensor([[0.5, 3.0]]))


def test_spreads_are_floored_at_a_fraction_of_the_median():
    dup = Spreads(torch.tensor([[0.0, 2.0, 2.0]]), torch.zeros(1, 3, dtype=torch.int64),
                  torch.tensor([[0.0, 3.0, 3.0]]))
    (floored,) = floor_all([dup])
    assert float(floored.first[0, 0]) == pytest.approx(SPREAD_FLOOR * 2.0)
    assert float(floored.second[0, 0]) == pytest.approx(SPREAD_FLOOR * 2.0)
    # identical images: every distance is 0 and the map stays finite (all 0)
    same = [two_textures(1, None)[0]] * 4
    m = MutualMapper(SYNTHETIC, radii=(1,), distance="euclidean", search="float32")
    m.fit(same)
    assert np.isfinite(m.score_grid(same[0])).all()


def test_density_is_in_the_state_and_provenance_and_an_outside_image_uses_the_folder_spreads():
    folder = two_textures(6, defect=None)
    on, off = (MutualMapper(SYNTHETIC, radii=(1,), distance="euclidean", search="float32", density=d)
               for d in (True, False))
    on.fit(folder)
    off.fit(folder)
    assert on.info()["density"] is True and off.info()["density"] is False
    assert on.state_key != off.state_key
    outside = two_textures(7, defect=6)[6]
    assert first(on.score_grid(outside)) == (1, 1)
    refs = ReferenceMapper(SYNTHETIC, radii=(1,), distance="euclidean")
    refs.fit(folder[:1])                       # one reference: no spreads, plain distances
    assert refs.info()["density"] is True and np.isfinite(refs.score_grid(outside)).all()
