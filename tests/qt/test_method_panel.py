"""The method panel: eight steps from the lane's own result, stepping with the keys, the step on
the canvas, live updates after an edit."""

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from zsas_gui.core.explain.explain import STEP_NAMES, render_step


def _pixmap_rgb(pixmap) -> np.ndarray:
    img = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    rows = np.frombuffer(img.constBits(), np.uint8).reshape(h, img.bytesPerLine())
    return rows[:, :3 * w].reshape(h, w, 3).copy()


def _ready(make_window, folder, pipeline, qtbot, wait_idle):
    w = make_window(pipeline, folder)
    seen = {"results": [], "ppgs": []}
    w.controller.result_shown.connect(lambda req, res: seen["results"].append((req, res)))
    w.lane.ppg_ready.connect(lambda req, ppg: seen["ppgs"].append((req, ppg)))
    w.actions["toggle_method"].trigger()
    assert w.method_panel.isVisible()
    qtbot.waitUntil(lambda: w.method_panel.explanation is not None, timeout=300_000)
    wait_idle(w)
    return w, seen


def test_strip_shows_the_eight_steps_of_the_lanes_result(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle):
    w, seen = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    panel, strip = w.method_panel, w.method_panel.strip
    assert strip.count() == 8
    assert [strip.item(i).data(Qt.ItemDataRole.UserRole) for i in range(8)] == list(STEP_NAMES)
    assert all(not strip.item(i).icon().isNull() for i in range(8))
    req, res = seen["results"][-1]
    expl = panel.explanation
    # the very objects the lane produced: nothing recomputed
    assert expl.result is res and panel.request is req
    assert expl.ppg is next(p for r, p in seen["ppgs"] if r is req)
    assert res.stages, "the tiny models should give at least stage 1"
    for k in (1, 2, 3):
        step = panel.steps[STEP_NAMES.index(f"stage{k}")]
        mine = tuple(s for s in res.stages if s.index == k)
        assert len(step.data["stages"]) == len(mine)
        assert all(a is b for a, b in zip(step.data["stages"], mine))
        if len(mine) == 1:
            assert step.data["mask"] is mine[0].mask
    assert strip.currentRow() == -1 and not w.canvas._step_item.isVisible()


def test_arrow_keys_step_through_and_the_canvas_shows_the_step(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle):
    w, _seen = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    panel, strip, canvas = w.method_panel, w.method_panel.strip, w.canvas
    strip.setFocus()
    qtbot.keyClick(strip, Qt.Key.Key_Right)
    assert strip.currentRow() == 0 and panel.current_step().name == "heatmap"
    assert canvas.step_caption().startswith("1/8 · Anomaly map S")
    captions = [canvas.step_caption()]
    for _ in range(6):
        qtbot.keyClick(strip, Qt.Key.Key_Right)
        captions.append(canvas.step_caption())
    assert strip.currentRow() == 6 and panel.current_step().name == "stage2"
    assert len(set(captions)) == 7
    assert captions[-1].startswith("7/8 · Stage 2: ")
    if panel.explanation.stage(2):
        assert "points + stage-1 mask logits" in captions[-1] and "predicted IoU" in captions[-1]
    assert panel.caption.text() == canvas.step_caption()
    # the canvas shows exactly that step, rendered at full size
    assert canvas._step_item.isVisible()
    shown = _pixmap_rgb(canvas._step_item.pixmap())
    assert np.array_equal(shown, render_step(w.controller.image, panel.current_step(),
                                             w.layers_box.colormap.currentText()))
    qtbot.keyClick(strip, Qt.Key.Key_Left)
    assert panel.current_step().name == "stage1"
    # Esc in the strip: the normal view, not "cancel computation"
    cancels = w.lane.counters["cancelled"]
    qtbot.keyClick(strip, Qt.Key.Key_Escape)
    assert strip.currentRow() == -1 and not canvas._step_item.isVisible() and canvas.step_caption() == ""
    assert not w.controller._user_cancel and w.lane.counters["cancelled"] == cancels
    # a click selects; hiding the panel returns to the normal view
    rect = strip.visualItemRect(strip.item(4))
    qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.current_step().name == "points" and canvas._step_item.isVisible()
    w.actions["toggle_method"].trigger()
    assert not panel.isVisible() and not canvas._step_item.isVisible()


def test_strip_follows_a_point_edit(make_window, image_folder, tiny_pipeline, qtbot, wait_idle, mouse,
                                    monkeypatch):
    from zsas_gui.qt import method_panel

    monkeypatch.setattr(method_panel, "LIVE_SIDE", 64)    # the quick rendering, then the sharp one
    w, seen = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    panel, doc = w.method_panel, w.controller.doc
    panel.select("points")
    before_expl, before_pix = panel.explanation, w.canvas._step_item.pixmap().cacheKey()
    assert panel.explanation.prompts_source == "auto"
    widths, set_step = [], w.canvas.set_step
    monkeypatch.setattr(w.canvas, "set_step", lambda rgb, caption="": (
        widths.append(None if rgb is None else rgb.shape[1]), set_step(rgb, caption)))
    mouse.click(w.canvas, 20, 30)
    assert "(before your last edit)" in w.canvas.step_caption()
    qtbot.waitUntil(lambda: panel.request is not None and panel.request.revision == doc.revision, timeout=300_000)
    wait_idle(w)
    expl = panel.explanation
    assert expl is not before_expl and expl.result is seen["results"][-1][1]
    assert expl.prompts_source == "user"
    assert np.allclose(expl.prompts.points[-1], (20, 30), atol=0.6)
    assert panel.current_step().data["prompts"] is expl.prompts
    assert w.canvas._step_item.pixmap().cacheKey() != before_pix
    assert "(before your last edit)" not in w.canvas.step_caption()
    # quick (64 px long, stretched over the 128 px image), then full size
    item = w.canvas._step_item
    qtbot.waitUntil(lambda: item.pixmap().width() == 128, timeout=300_000)
    assert 64 in widths and widths[-1] == 128
    assert item.scale() == 1.0
    assert np.array_equal(_pixmap_rgb(item.pixmap()), render_step(w.controller.image, panel.current_step(),
                                                                  w.layers_box.colormap.currentText()))


def test_thumbnails_come_from_a_downscaled_image():
    from zsas_gui.core.explain.explain import Step
    from zsas_gui.core.types import Prompts
    from zsas_gui.qt.method_panel import THUMB_SIDE, downscale, scaled_step

    image = np.zeros((300, 600, 3), np.uint8)
    small, f = downscale(image)
    assert max(small.shape[:2]) == THUMB_SIDE and small.shape[:2] == (56, 112) and f == THUMB_SIDE / 600
    region = np.zeros((300, 600), bool)
    region[100:200, 300:400] = True
    prompts = Prompts(np.float32([[350, 150]]), np.int32([1]), np.float32([0.9]))
    step = Step("points", "t", "c", "points", {"S": region.astype(np.float32), "ring": region,
                                                "region": region, "prompts": prompts})
    s = scaled_step(step, small.shape[:2])
    assert s.data["ring"].shape == (56, 112) and s.data["ring"].dtype == bool
    assert np.allclose(s.data["prompts"].points, [[350 * 112 / 600, 150 * 56 / 300]])
    assert step.data["prompts"] is prompts and render_step(small, s).shape == (56, 112, 3)
