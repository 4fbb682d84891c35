"""Defects found trying the window as a new user (issue 19): the wheel over the side panel edited
values, an unreadable image left the previous one active, Ctrl+Z did nothing in a spin box."""

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QScrollArea


def _wheel(widget, steps: int = -1) -> None:
    """One wheel notch (``steps`` -1: scroll down) over the centre of ``widget``, delivered as the
    window system would: to the widget under the cursor, propagated to its parents if ignored."""
    pos = QPointF(widget.rect().center())
    ev = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                     False)
    QApplication.sendEvent(widget, ev)


def _activate(w, qtbot) -> None:
    """Make ``w`` the active window (shortcuts act only there) and wait until it is."""
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)


def test_wheel_over_the_side_panel_scrolls_it_and_edits_no_value(make_window, image_folder, qtbot):
    w = make_window(None, image_folder)
    w.resize(1000, 420)                          # short: the side panel scrolls
    scroll = w.findChild(QDockWidget, "side_dock").findChild(QScrollArea)
    bar = scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    doc = w.controller.doc
    p = w.params_panel
    before = (p.k_pos.value(), p.k_neg.value(), p.rule.currentIndex(), p.tau.value(),
              w.layers_box.colormap.currentIndex())
    w.canvas.setFocus()
    for widget in (p.k_pos, p.k_neg, p.rule, p.tau, w.layers_box.colormap):
        bar.setValue(bar.maximum() // 2)
        start = bar.value()
        _wheel(widget, -1)
        assert bar.value() > start or bar.value() == bar.maximum(), "the panel should scroll"
    after = (p.k_pos.value(), p.k_neg.value(), p.rule.currentIndex(), p.tau.value(),
             w.layers_box.colormap.currentIndex())
    assert after == before
    assert doc.state.params == w.params_panel.params() and not doc.undo_stack.can_undo
    # focused, the wheel edits the value as usual
    p.k_pos.setFocus()
    qtbot.waitUntil(p.k_pos.hasFocus)
    _wheel(p.k_pos, 1)
    assert p.k_pos.value() == before[0] + 1


def test_ctrl_z_undoes_the_document_while_a_spin_box_has_focus(make_window, image_folder, qtbot):
    w = make_window(None, image_folder)
    doc = w.controller.doc
    k0 = doc.state.params.k_pos
    w.params_panel.k_pos.setValue(k0 + 2)
    assert doc.state.params.k_pos == k0 + 2
    _activate(w, qtbot)
    w.params_panel.k_pos.setFocus()
    qtbot.waitUntil(w.params_panel.k_pos.hasFocus)
    qtbot.keyClick(w.params_panel.k_pos, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.state.params.k_pos == k0 and w.params_panel.k_pos.value() == k0
    qtbot.keyClick(w.params_panel.k_pos, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert doc.state.params.k_pos == k0 + 2


def _bad_folder(root):
    root.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(root / "a_good.jpg")
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(root / "b_cut.png")
    data = (root / "b_cut.png").read_bytes()
    (root / "b_cut.png").write_bytes(data[: len(data) // 2])          # truncated PNG
    (root / "c_text.png").write_text("not an image\n")
    return root


def test_selecting_an_unreadable_image_shows_it_as_unreadable(make_window, tmp_path, qtbot):
    from zsas_gui.state.project import Project

    root = _bad_folder(tmp_path / "bad")
    w = make_window(None, root)
    c = w.controller
    assert c.doc.image_id == "a_good.jpg"
    for bad in ("b_cut.png", "c_text.png"):
        w.file_list.select(bad)
        assert w.file_list.current_rel() == bad
        assert c.doc is None and c.image is None
        assert c.unreadable is not None and c.unreadable[0] == bad
        assert bad in w.windowTitle() and "a_good.jpg" not in w.windowTitle()
        assert w.canvas.image_hw is None
        overlay = w.findChild(type(w.canvas_overlay), "canvas_overlay")
        assert overlay.isVisible() and bad in overlay.text() and "cannot" in overlay.text().lower()
        for key in ("accept", "reject", "mark_good", "undo", "regenerate", "tool_brush", "clear_mask"):
            assert not w.actions[key].isEnabled(), key
        assert w.file_list.status_of(bad) == "unreadable"
        _activate(w, qtbot)
        w.file_list.setFocus()                   # as after a click on the row
        for key in (Qt.Key.Key_A, Qt.Key.Key_X, Qt.Key.Key_G):
            qtbot.keyClick(w.file_list, key)
    c.flush()
    assert Project.open(root).status("a_good.jpg") == "unreviewed"
    w.file_list.select("a_good.jpg")                 # back to a readable image: all enabled again
    assert c.doc.image_id == "a_good.jpg" and c.unreadable is None
    assert not w.canvas_overlay.isVisible() and w.actions["reject"].isEnabled()
    _activate(w, qtbot)
    w.file_list.setFocus()
    qtbot.keyClick(w.file_list, Qt.Key.Key_X)
    assert c.doc.status == "rejected"
