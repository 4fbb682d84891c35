"""Canvas layers and conversions: the heatmap is restyled through its colour table, never
recomputed; numpy buffers stay alive behind QImages; zoom, fit, 1:1, split, layer toggles."""

import gc

import numpy as np
import pytest

from zsas_gui.core.types import Prompts
from zsas_gui.qt.canvas import ImageCanvas
from zsas_gui.qt.convert import (
    colormap_lut,
    indexed_qimage,
    mask_to_qimage,
    qimage_to_rgb,
    rgb_to_qimage,
    scalar_to_indexed,
)

RNG = np.random.default_rng(1)
IMG = RNG.integers(0, 255, (60, 80, 3), dtype=np.uint8)


def test_rgb_round_trip_survives_dropping_the_array(qapp):
    a = IMG.copy()
    q = rgb_to_qimage(a)
    del a
    gc.collect()
    assert np.array_equal(qimage_to_rgb(q), IMG)
    with pytest.raises(ValueError, match="RGB"):
        rgb_to_qimage(IMG[:, :, 0])


def test_indexed_heatmap_and_mask_overlay(qapp):
    s = np.linspace(0, 1, 80, dtype=np.float32)[None].repeat(60, 0)
    idx = scalar_to_indexed(s)
    assert idx.dtype == np.uint8 and idx[0, 0] == 0 and idx[0, -1] == 255
    q = indexed_qimage(idx, colormap_lut("jet"))
    rgb = qimage_to_rgb(q)
    assert np.array_equal(rgb[0, -1], colormap_lut("jet")[255])
    m = np.zeros((60, 80), bool)
    m[10:20, 5:9] = True
    ov = mask_to_qimage(m, (255, 0, 0), 100)
    assert ov.pixelColor(6, 12).alpha() == 100 and ov.pixelColor(50, 50).alpha() == 0


def test_restyling_swaps_the_table_and_keeps_the_indices(qtbot):
    c = ImageCanvas()
    qtbot.addWidget(c)
    c.set_image(IMG)
    c.set_heatmap(np.tile(np.linspace(0, 1, 80, dtype=np.float32), (60, 1)))
    idx = c.heatmap.index
    before = qimage_to_rgb(c.heatmap.image)
    c.set_colormap("viridis")
    assert c.heatmap.index is idx
    after = qimage_to_rgb(c.heatmap.image)
    assert not np.array_equal(before, after) and np.array_equal(after[0, 79], colormap_lut("viridis")[255])
    c.set_heatmap_opacity(0.2)
    assert abs(c.heatmap_opacity() - 0.2) < 1e-6
    c.set_tau(0.5)
    assert not c.heatmap.contour_item.path().isEmpty()


def test_layers_zoom_fit_and_split(qtbot):
    c = ImageCanvas()
    qtbot.addWidget(c)
    c.resize(400, 300)
    c.show()
    qtbot.waitExposed(c)
    c.set_image(IMG)
    c.set_points(Prompts(np.array([[10, 10], [50, 40]], np.float32), np.array([1, 0])))
    assert [p.positive for p in c.point_items()] == [True, False]
    c.set_points(Prompts(np.array([[12, 10]], np.float32), np.array([1])))
    assert len(c.point_items()) == 1 and c.point_items()[0].image_xy() == (12.0, 10.0)
    fit = c.zoom()
    assert fit > 3                                     # 80x60 image in a 400x300 view
    c.zoom_by(2.0)
    assert abs(c.zoom() - 2 * fit) < 1e-6
    c.actual_size()
    assert c.zoom() == 1.0
    c.fit()
    assert abs(c.zoom() - fit) < 1e-6
    c.set_layer_visible("points", False)
    assert not c.point_items()[0].isVisible()
    c.set_split(0.25)
    assert c._clip.rect().width() == 20 and c._split_line.isVisible()
    c.set_split(None)
    assert c._clip.rect().width() == 80
    with pytest.raises(ValueError, match="layer"):
        c.set_layer_visible("nope", True)
    c.close()
