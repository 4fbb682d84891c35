"""Parameter and text-prompt edits re-run the method on the lane (debounced); layout persists;
folders can be dropped on the window."""

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from zsas_gui.qt.controller import DEBOUNCE_MS


def _ready(make_window, folder, pipeline, qtbot, wait_idle):
    w = make_window(pipeline, folder)
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=300_000)
    wait_idle(w)
    return w


def test_slider_edits_are_debounced_into_few_refinements(make_window, image_folder, tiny_pipeline, qtbot,
                                                         wait_idle):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    doc, lane = w.controller.doc, w.lane
    refines = lane.counters["refines"]
    for k in (4, 5, 6):
        w.params_panel.k_pos.setValue(k)          # three quick edits
    assert doc.state.params.k_pos == 6 and doc.needs_refine
    assert len(doc.undo_stack) == 1               # one undo step for the burst
    qtbot.wait(DEBOUNCE_MS // 3)
    assert lane.counters["refines"] == refines    # nothing sent yet
    qtbot.waitUntil(lambda: not doc.needs_refine, timeout=300_000)
    wait_idle(w)
    assert lane.counters["refines"] - refines <= 2
    assert doc.state.auto and doc.state.params.k_pos == 6


def test_a_text_prompt_change_recomputes_the_heatmap_without_re_encoding(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    doc = w.controller.doc
    old_map = w.controller.heatmap
    encodes = dict(tiny_pipeline.encoder_calls)
    w.text_box.object_name.setText("magnetic tile")
    w.text_box._apply()
    assert doc.state.text_prompts.object_name == "magnetic tile" and doc.needs_refine
    qtbot.waitUntil(lambda: not doc.needs_refine, timeout=300_000)
    wait_idle(w)
    assert w.controller.heatmap is not old_map
    assert tiny_pipeline.encoder_calls == encodes            # image encoders did not run again
    w.text_box.normal.setPlainText("no placeholder here")
    w.text_box._apply()
    assert "{}" in w.text_box.error.text() and doc.state.text_prompts.object_name == "magnetic tile"


def test_window_layout_persists(make_window, qtbot):  # both windows share this test's settings
    from zsas_gui.qt.lane import InferenceLane
    from zsas_gui.qt.main_window import MainWindow

    w = make_window(None)
    w.resize(640, 480)                      # within the offscreen screen (restoreGeometry clamps)
    qtbot.wait(20)
    w.close()
    w2 = MainWindow(InferenceLane(None))
    qtbot.addWidget(w2)
    assert (w2.width(), w2.height()) == (640, 480)
    w2.close()


def _drop(w, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    w.dropEvent(QDropEvent(QPoint(10, 10).toPointF(), Qt.DropAction.CopyAction, mime,
                           Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    QApplication.processEvents()


def test_dropping_a_folder_opens_it_and_an_image_in_it_is_selected(make_window, image_folder, qtbot):
    w = make_window(None)
    _drop(w, image_folder)
    assert w.controller.project.root == image_folder.resolve() and len(w.file_list.ordered()) == 7
    _drop(w, image_folder / "test" / "scratch" / "001.png")
    assert w.controller.project.root == image_folder.resolve()
    assert w.controller.doc.image_id == "test/scratch/001.png"


def test_new_images_start_from_the_last_parameters_and_text_prompts(make_window, image_folder, tiny_pipeline,
                                                                    qtbot, wait_idle):
    w = _ready(make_window, image_folder, tiny_pipeline, qtbot, wait_idle)
    w.params_panel.k_pos.setValue(5)
    w.text_box.object_name.setText("tile")
    w.text_box._apply()
    wait_idle(w)
    qtbot.waitUntil(lambda: not w.controller.doc.needs_refine, timeout=300_000)
    w.file_list.select(w.file_list.ordered()[1])
    s = w.controller.doc.state
    assert s.params.k_pos == 5 and s.text_prompts.object_name == "tile" and len(w.controller.doc.undo_stack) == 0
    assert w.params_panel.k_pos.value() == 5 and w.text_box.object_name.text() == "tile"
    wait_idle(w)
    w.close()
    w2 = make_window(tiny_pipeline, image_folder)       # remembered for the project
    assert w2.controller.project_defaults.value[0].k_pos == 5
    wait_idle(w2)
