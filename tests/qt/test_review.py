"""Undo/redo keys, review shortcuts (accept, reject, good, class, next, previous, next unreviewed)."""

import numpy as np
from PySide6.QtCore import Qt

from zsas_gui.state.project import Project


def _key(qtbot, w, key, mod=Qt.KeyboardModifier.NoModifier):
    w.activateWindow()
    qtbot.keyClick(w.canvas, key, mod)


def _ready(make_window, folder, pipeline, qtbot, wait_idle):
    w = make_window(pipeline, folder)
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=300_000)
    wait_idle(w)
    return w


def test_undo_redo_keys_across_points_parameters_and_paint(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle, mouse):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    doc = w.controller.doc
    n0 = len(doc.prompts)
    mouse.click(w.canvas, 10, 10)
    wait_idle(w)
    w.params_panel.tau.setValue(0.8)
    assert doc.state.params.tau == 0.8
    wait_idle(w)
    _key(qtbot, w, Qt.Key.Key_B)
    assert w.canvas.tool == "brush"
    mouse.drag(w.canvas, [(60, 50), (70, 50), (80, 50)])
    assert doc.state.mask_source == "edited" and doc.mask[50, 70]
    painted = doc.mask.copy()
    ctrl, ctrl_shift = Qt.KeyboardModifier.ControlModifier, (Qt.KeyboardModifier.ControlModifier
                                                             | Qt.KeyboardModifier.ShiftModifier)
    _key(qtbot, w, Qt.Key.Key_Z, ctrl)                   # undo the stroke
    assert doc.state.mask_source != "edited" and doc.state.params.tau == 0.8
    _key(qtbot, w, Qt.Key.Key_Z, ctrl)                   # undo tau
    assert doc.state.params.tau == 0.5 and w.params_panel.tau.value() == 0.5
    _key(qtbot, w, Qt.Key.Key_Z, ctrl)                   # undo the point
    assert len(doc.prompts) == n0
    assert not doc.needs_refine                          # the state before had its mask: no recompute
    for _ in range(3):
        _key(qtbot, w, Qt.Key.Key_Z, ctrl_shift)
    assert doc.state.params.tau == 0.8 and len(doc.prompts) == n0 + 1
    assert np.array_equal(doc.mask, painted)
    wait_idle(w)


def test_review_shortcuts_and_navigation(make_window, image_folder, tiny_pipeline, qtbot, wait_idle):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    w.actions["auto_advance"].setChecked(False)                   # (auto-advance: test_review_progress.py)
    c = w.controller
    rels = w.file_list.ordered()
    _key(qtbot, w, Qt.Key.Key_A)                                  # accept
    assert c.doc.status == "accepted" and w.file_list.status_of(rels[0]) == "accepted"
    _key(qtbot, w, Qt.Key.Key_PageDown)                           # next
    assert c.doc.image_id == rels[1]
    _key(qtbot, w, Qt.Key.Key_X)                                  # reject
    assert c.doc.status == "rejected"
    _key(qtbot, w, Qt.Key.Key_PageDown)
    _key(qtbot, w, Qt.Key.Key_G)                                  # good: empty mask
    assert c.doc.status == "good" and not c.doc.mask.any()
    _key(qtbot, w, Qt.Key.Key_C)                                  # defect class
    assert w.review_box.class_combo.hasFocus() or w.review_box.class_combo.lineEdit().hasFocus()
    w.review_box.class_combo.lineEdit().setText("crack")
    qtbot.keyClick(w.review_box.class_combo.lineEdit(), Qt.Key.Key_Return)
    assert c.doc.defect_class == "crack"
    _key(qtbot, w, Qt.Key.Key_PageUp)                             # previous
    assert c.doc.image_id == rels[1]
    _key(qtbot, w, Qt.Key.Key_U)                                  # next unreviewed
    assert c.doc.image_id == rels[3]
    wait_idle(w)
    c.flush()
    proj = Project.open(image_folder)
    assert [proj.status(r) for r in rels[:3]] == ["accepted", "rejected", "good"]
    rec = proj.load(rels[2])
    assert rec.defect_class == "crack" and rec.mask is not None and not rec.mask.any()
    assert proj.load(rels[0]).provenance["mask_source"] == "auto"


def test_reopening_an_image_keeps_its_undo_history(make_window, image_folder, tiny_pipeline, qtbot, wait_idle, mouse):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    first = w.controller.doc
    mouse.click(w.canvas, 10, 10)
    wait_idle(w)
    _key(qtbot, w, Qt.Key.Key_PageDown)
    wait_idle(w)
    _key(qtbot, w, Qt.Key.Key_PageUp)
    assert w.controller.doc is first and first.undo_stack.can_undo
    wait_idle(w)
