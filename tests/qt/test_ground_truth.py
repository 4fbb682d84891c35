"""Ground truth in the app: outline of the MVTec mask and the IoU of the current mask."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from zsas_gui.core.io.imageio import save_mask, save_png
from zsas_gui.core.metrics import iou
from zsas_gui.qt.ground_truth import GroundTruthFinder

HW = (48, 64)


@pytest.fixture
def mvtec(tmp_path):
    """tmp/bottle: test/crack/000-001.png with ground_truth/crack/NNN_mask.png, test/good/000.png."""
    root = tmp_path / "bottle"
    rng = np.random.default_rng(0)
    truth = {}
    for i in range(2):
        gt = np.zeros(HW, bool)
        gt[10 + i:25 + i, 20:40] = True
        save_png(root / f"test/crack/{i:03d}.png", rng.integers(100, 160, (*HW, 3), dtype=np.uint8))
        save_mask(root / f"ground_truth/crack/{i:03d}_mask.png", gt)
        truth[f"test/crack/{i:03d}.png"] = gt
    save_png(root / "test/good/000.png", rng.integers(100, 160, (*HW, 3), dtype=np.uint8))
    return root, truth


def test_outline_and_iou_follow_paint_and_undo(make_window, mvtec, qtbot):
    root, truth = mvtec
    w = make_window(None, root)
    rel = "test/crack/000.png"
    w.open_image(rel)
    gtv, doc = w.ground_truth, w.controller.doc
    assert doc.image_id == rel
    assert np.array_equal(gtv.gt, truth[rel])
    rect = w.canvas._gt_item.path().boundingRect()
    assert (rect.left(), rect.top(), rect.right(), rect.bottom()) == (20.5, 10.5, 39.5, 24.5)   # pixel centres of the boundary
    assert w.canvas._gt_item.isVisible() and w.actions["toggle_gt"].isChecked()
    label = w.findChild(type(gtv.label), "gt_iou")
    assert label is gtv.label and label.isVisible() and label.text().endswith("no mask yet")
    # a brush stroke over part of the defect
    w.controller.paint(np.float32([[22, 15], [30, 15]]), 4.0, True)
    expected = iou(doc.mask, truth[rel])
    assert 0 < expected < 1 and gtv.value == pytest.approx(expected)
    assert label.text() == f"IoU vs ground truth: {expected:.3f}"
    w.controller.paint(np.float32([[25, 12], [35, 20]]), 6.0, True)
    second = iou(doc.mask, truth[rel])
    assert second != expected and label.text() == f"IoU vs ground truth: {second:.3f}"
    w.controller.undo()
    assert label.text() == f"IoU vs ground truth: {expected:.3f}"
    w.controller.clear_mask()
    assert gtv.value == 0.0
    # the layer toggles
    w.actions["toggle_gt"].trigger()
    assert not w.canvas._gt_item.isVisible()
    # loaded lazily: only the images opened so far
    assert set(gtv._cache) == {rel}
    w.open_image("test/crack/001.png")
    assert np.array_equal(gtv.gt, truth["test/crack/001.png"]) and set(gtv._cache) == {rel, "test/crack/001.png"}
    w.open_image("test/good/000.png")
    assert not gtv.gt.any() and label.text().endswith("no mask yet")


def test_finder_layouts(mvtec, tmp_path):
    root, _truth = mvtec
    f = GroundTruthFinder(root)
    assert f.mvtec and f.path_for("test/crack/001.png") == root / "ground_truth/crack/001_mask.png"
    assert f.path_for("test/good/000.png") is None and f.known_normal("test/good/000.png")
    assert f.path_for("ground_truth/crack/001_mask.png") is None
    sub = GroundTruthFinder(root / "test")                    # the category's test/ folder opened
    assert sub.path_for("crack/000.png") == root / "ground_truth/crack/000_mask.png"
    assert sub.known_normal("good/000.png")
    plain = tmp_path / "plain"
    save_png(plain / "a/x.png", np.zeros((*HW, 3), np.uint8))
    save_mask(plain / "a/x_mask.png", np.ones(HW, bool))
    p = GroundTruthFinder(plain)
    assert not p.mvtec and p.path_for("a/x.png") == plain / "a/x_mask.png" and p.path_for("a/x_mask.png") is None
    assert not p.known_normal("a/x.png")


def test_a_folder_without_masks_shows_nothing_and_a_size_mismatch_is_reported(make_window, image_folder, tmp_path):
    w = make_window(None, image_folder)
    assert w.controller.doc is not None
    assert w.ground_truth.gt is None and not w.ground_truth.label.isVisible()
    assert w.canvas._gt_item.path().isEmpty()
    save_mask(image_folder / "test/hole/000_mask.png", np.ones((5, 5), bool))
    w.open_folder(image_folder)
    w.open_image("test/hole/000.png")
    assert w.ground_truth.gt is None and "ground truth is 5x5" in w.ground_truth.label.text()


def _colours_near(img, x0: int, x1: int, y0: int, y1: int) -> tuple[int, int]:
    """(bright yellow pixels, dark pixels) in a viewport image's box [x0, x1) x [y0, y1)."""
    yellow = dark = 0
    for y in range(y0, y1):
        for x in range(x0, x1):
            c = img.pixelColor(x, y)
            yellow += c.red() > 200 and c.green() > 180 and c.blue() < 90
            dark += c.red() < 70 and c.green() < 70 and c.blue() < 70
    return yellow, dark


@pytest.mark.parametrize("grey", [255, 0])
def test_the_outline_reads_on_bright_and_dark_images_at_100_percent(make_window, tmp_path, grey):
    """A bright dashed line over a dark halo, both cosmetic (screen pixels): on a white image the
    halo shows, on a black one the line; at 100 % zoom both are drawn along the boundary."""
    from zsas_gui.qt.canvas_items import GT_HALO_WIDTH, GT_LINE_WIDTH

    root = tmp_path / "bright"
    hw = (120, 160)
    gt = np.zeros(hw, bool)
    gt[30:90, 40:120] = True
    save_png(root / "test/crack/000.png", np.full((*hw, 3), grey, np.uint8))
    save_mask(root / "ground_truth/crack/000_mask.png", gt)
    w = make_window(None, root)
    w.open_image("test/crack/000.png")
    item, canvas = w.canvas._gt_item, w.canvas
    halo, line = item.pen(), item.line
    assert halo.isCosmetic() and line.isCosmetic()
    assert (halo.widthF(), line.widthF()) == (GT_HALO_WIDTH, GT_LINE_WIDTH) and GT_HALO_WIDTH > GT_LINE_WIDTH
    assert halo.color().value() < 60 and line.style() == Qt.PenStyle.DashLine
    canvas.actual_size()
    assert canvas.zoom() == pytest.approx(1.0)
    img = canvas.viewport().grab().toImage()
    top_left = canvas.mapFromScene(40.5, 30.5)                   # the boundary's top-left pixel centre
    x, y = top_left.x(), top_left.y()
    yellow, dark = _colours_near(img, x, x + 60, y - 3, y + 4)     # along the top edge
    assert yellow >= 30                                          # the line: dashes over 60 px
    if grey == 255:
        assert dark >= 60                                        # the halo around it on white
    inside = img.pixelColor(x + 30, y + 20)                      # the image itself, untouched
    assert abs(inside.red() - grey) < 10
