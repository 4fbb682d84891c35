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


def test_the_model_manager_says_which_models_are_loaded(make_window, tiny_models, qtbot):
    w = make_window(None)
    w.show_model_dialog()
    dlg = w._model_dialog
    assert "none" in dlg.loaded.text()
    w.load_models(str(tiny_models[0]), str(tiny_models[1]), "cpu")
    qtbot.waitUntil(lambda: w.controller.models_state == "ready", timeout=300_000)
    # the window's own slot of models_loaded may run after the controller's (a loaded machine
    # splits the queued slots between two event-loop turns): wait for it, do not race it
    qtbot.waitUntil(lambda: "tiny-clip" in dlg.loaded.text(), timeout=300_000)
    assert "tiny-sam" in dlg.loaded.text()
    dlg.close()


def test_the_method_panel_refits_the_image(make_window, image_folder, qtbot):
    w = make_window(None, image_folder)
    w.resize(1400, 520)                                   # wide and low: the height limits the fit
    qtbot.waitUntil(lambda: w.canvas.viewport().width() > 1.5 * w.canvas.viewport().height())
    w.canvas.fit()
    fitted = w.canvas.zoom()
    w.actions["toggle_method"].setChecked(True)          # the strip takes height from the canvas
    assert w.canvas.zoom() < fitted
    for on in (True, False):
        w.actions["toggle_method"].setChecked(on)
        image_h, view_h = w.canvas.image_hw[0] * w.canvas.zoom(), w.canvas.viewport().height()
        assert 0.9 * view_h <= image_h <= view_h + 1       # fitted to the canvas as it is now
