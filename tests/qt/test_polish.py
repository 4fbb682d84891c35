"""Polish from trying the window (issue 19, item 10)."""

from PySide6.QtWidgets import QScrollArea, QTableWidget

from zsas_gui.qt.shortcuts import HelpDialog


def test_review_box_is_pinned_and_no_model_mode_explains_the_disabled_points_tool(make_window, image_folder):
    w = make_window(None, image_folder)               # no models
    scroll = w.findChild(QScrollArea, "side_scroll")
    assert not scroll.isAncestorOf(w.review_box) and w.review_box.isVisible()
    act = w.actions["tool_points"]
    assert not act.isEnabled() and "SAM model" in act.toolTip()
    assert w.canvas.tool == "brush"
    assert w.actions["tool_brush"].isEnabled()


def test_the_help_dialog_fits_its_table(qtbot):
    dlg = HelpDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    table = dlg.findChild(QTableWidget, "help_table")
    needed = sum(table.columnWidth(c) for c in range(table.columnCount()))
    assert table.viewport().width() >= needed
    dlg.close()
