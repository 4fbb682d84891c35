"""Point editing on the canvas: a click adds a point and the lane refines; drag; delete."""

import numpy as np
from PySide6.QtCore import Qt


def _ready(make_window, folder, pipeline, qtbot, wait_idle):
    w = make_window(pipeline, folder)
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=300_000)
    wait_idle(w)
    return w


def test_click_adds_a_point_and_the_lane_refines_and_shows_the_mask(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle, mouse):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    doc, lane = w.controller.doc, w.lane
    n0, refines0 = len(doc.prompts), lane.counters["refines"]
    mouse.click(w.canvas, 20, 30)                                   # left: positive
    assert len(doc.prompts) == n0 + 1 and doc.prompts.labels[-1] == 1
    assert np.allclose(doc.prompts.points[-1], (20, 30), atol=0.6)
    assert not doc.state.auto and doc.needs_refine
    mouse.click(w.canvas, 100, 70, button=Qt.MouseButton.RightButton)  # right: negative
    assert doc.prompts.labels[-1] == 0
    assert len(w.canvas.point_items()) == n0 + 2
    qtbot.waitUntil(lambda: not doc.needs_refine, timeout=300_000)
    assert doc.state.mask_source == "refined"
    assert lane.counters["refines"] > refines0
    assert w.canvas._mask is doc.mask and not w.canvas._mask_item.pixmap().isNull()
    # the result was computed for exactly these prompts
    assert doc.mask.shape == (96, 128)


def test_drag_moves_a_point_in_one_undo_step(make_window, image_folder, tiny_pipeline, qtbot, wait_idle, mouse):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    doc = w.controller.doc
    mouse.click(w.canvas, 30, 40)
    wait_idle(w)
    i = len(doc.prompts) - 1
    steps = len(doc.undo_stack)
    mouse.drag(w.canvas, [(30, 40), (40, 45), (50, 50), (60, 55)])
    assert np.allclose(doc.prompts.points[i], (60, 55), atol=0.6)
    assert len(doc.undo_stack) == steps + 1
    x, y = w.canvas.point_items()[i].image_xy()
    assert abs(x - doc.prompts.points[i, 0]) < 1e-3 and abs(y - doc.prompts.points[i, 1]) < 1e-3
    qtbot.waitUntil(lambda: not doc.needs_refine, timeout=300_000)
    w.controller.undo()
    assert np.allclose(doc.prompts.points[i], (30, 40), atol=0.6)


def test_delete_key_on_the_hovered_point_and_ctrl_click_remove_points(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle, mouse):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    doc = w.controller.doc
    w.controller.clear_points()
    mouse.click(w.canvas, 20, 20)
    mouse.click(w.canvas, 90, 60)
    assert len(doc.prompts) == 2
    mouse.send(w.canvas, "move", 20, 20, buttons=Qt.MouseButton.NoButton)
    assert w.canvas.hovered_point() == 0
    w.activateWindow()
    qtbot.keyClick(w.canvas, Qt.Key.Key_Delete)
    assert len(doc.prompts) == 1 and np.allclose(doc.prompts.points[0], (90, 60), atol=0.6)
    mouse.click(w.canvas, 90, 60, modifiers=Qt.KeyboardModifier.ControlModifier)
    assert len(doc.prompts) == 0
    wait_idle(w)


def test_regenerate_restores_the_automatic_points(make_window, image_folder, tiny_pipeline, qtbot, wait_idle, mouse):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    doc = w.controller.doc
    auto_points = doc.prompts.points.copy()
    w.controller.clear_points()
    mouse.click(w.canvas, 5, 5)
    wait_idle(w)
    w.activateWindow()
    qtbot.keyClick(w.canvas, Qt.Key.Key_R)
    assert doc.state.auto
    qtbot.waitUntil(lambda: not doc.needs_refine, timeout=300_000)
    assert np.allclose(doc.prompts.points, auto_points)


def test_while_dragging_one_refinement_is_in_flight_and_its_mask_is_shown(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle, mouse):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    c = w.controller
    mouse.click(w.canvas, 30, 40)
    wait_idle(w)
    i = len(c.doc.prompts) - 1
    shown, dropped = c.shown_results, c.dropped_results
    mouse.send(w.canvas, "press", 30, 40)
    for k in range(1, 4):                                   # the user keeps moving, slowly
        mouse.send(w.canvas, "move", 30 + 10 * k, 40, buttons=Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda k=k: c.shown_results >= shown + k, timeout=300_000)
        x, _ = w.canvas.point_items()[i].image_xy()
        assert abs(x - (30 + 10 * k)) < 0.6                 # the marker stays under the mouse
    for x in range(61, 80):                                 # fast moves: at most one in flight
        mouse.send(w.canvas, "move", x, 45, buttons=Qt.MouseButton.LeftButton)
    assert c.doc.revision - c.drag.in_flight[1] == 0 and c.drag.waiting is not None
    mouse.send(w.canvas, "release", 79, 45)
    qtbot.waitUntil(lambda: not c.doc.needs_refine, timeout=300_000)
    wait_idle(w)
    assert np.allclose(c.doc.prompts.points[i], (79, 45), atol=0.6)
    assert c.dropped_results == dropped                     # nothing computed in vain
    assert len(c.doc.undo_stack) >= 1 and c.doc.undo_stack.undo_label == "move point"
