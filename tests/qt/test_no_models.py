"""With no models the app opens, shows the images, explains once how to get models, and lets the
user paint and review masks by hand."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from zsas_gui.app import build_parser, launch
from zsas_gui.state.project import Project


def test_no_models_path(image_folder, tmp_path, monkeypatch, qtbot, mouse):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "empty-model-cache"))
    w = launch(build_parser().parse_args([str(image_folder)]))
    qtbot.addWidget(w)
    try:
        assert w.controller.models_state == "missing"
        box = w._no_models_dialog
        assert box is not None and box.isVisible()
        assert "paint masks by hand" in box.text() and "not installed" in box.detailedText()
        box.close()
        assert w.canvas.image_hw == (96, 128) and len(w.file_list.ordered()) == 7
        qtbot.wait(50)
        assert w.lane.counters["features"] == 0 and not w.lane.busy
        qtbot.waitExposed(w)
        w.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
        qtbot.keyClick(w.canvas, Qt.Key.Key_B)
        assert w.canvas.tool == "brush"
        mouse.drag(w.canvas, [(30, 30), (40, 35), (50, 40)])
        doc = w.controller.doc
        assert doc.mask is not None and doc.mask[35, 40] and doc.state.mask_source == "edited"
        qtbot.keyClick(w.canvas, Qt.Key.Key_A)
        assert doc.status == "edited"
        rel = doc.image_id
        assert w.status.device.text() == "no models"
    finally:
        w.close()
    QApplication.processEvents()
    rec = Project.open(image_folder).load(rel)
    assert rec.status == "edited" and rec.mask[35, 40] and rec.provenance["mask_source"] == "edited"


def test_model_choice_prefers_the_command_line(tiny_models, tmp_path, monkeypatch):
    from zsas_gui.app import choose_models
    from zsas_gui.qt.settings import app_settings

    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "none"))
    clip_dir, sam_dir = tiny_models
    args = build_parser().parse_args(["--clip", str(clip_dir), "--sam", str(sam_dir), "--device", "cpu"])
    clip, sam, device, precision, problem = choose_models(args, app_settings())
    assert (clip, sam, device, precision, problem) == (str(clip_dir), str(sam_dir), "cpu", "auto", None)
    clip, sam, *_rest, problem = choose_models(build_parser().parse_args([]), app_settings())
    assert "CLIP model" in problem and "SAM model" in problem
