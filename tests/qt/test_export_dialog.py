"""File → Export…: the same export as ``zsas export``; problems listed before anything is written;
the export on a worker thread; "Open folder" at the end."""

import numpy as np
from PySide6.QtCore import Qt

from zsas_gui.qt.export_dialog import ExportDialog


def _review(w, qtbot):
    """Paint and accept test/hole/000.png, mark train/good/000.png good."""
    c = w.controller
    w.file_list.select("test/hole/000.png")
    assert c.doc.image_id == "test/hole/000.png"
    c.paint(np.array([[30.0, 30.0], [50.0, 40.0]], dtype=np.float32), 6.0, True)
    c.accept()
    assert c.doc.status == "edited"           # accepted after a hand edit
    w.file_list.select("train/good/000.png")
    c.mark_good()


def _dialog(w, qtbot) -> ExportDialog:
    w.actions["export"].trigger()
    dlg = w.findChild(ExportDialog, "export_dialog")
    assert dlg is not None and dlg.isVisible()
    return dlg


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
                  and p.name != "zsas_export.json")


def test_file_export_writes_what_zsas_export_writes_and_offers_the_folder(
        make_window, image_folder, qtbot, tmp_path, monkeypatch):
    from zsas_gui.cli import main as cli_main

    w = make_window(None, image_folder)
    _review(w, qtbot)                    # not flushed yet: the dialog saves the window's edits first
    dlg = _dialog(w, qtbot)
    assert dlg.statuses["accepted"].isChecked() and not dlg.statuses["unreviewed"].isChecked()
    dlg.format.setCurrentIndex(dlg.format.findData("mvtec"))
    out = tmp_path / "out_app"
    dlg.out.setText(str(out))
    qtbot.mouseClick(dlg.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.report is not None or dlg.problems.isVisible(), timeout=300_000)
    assert dlg.report is not None, [dlg.problems.item(i).text() for i in range(dlg.problems.count())]
    assert dlg.report.n_abnormal == 1 and dlg.report.n_normal == 1
    assert dlg.open_button.isVisible() and "exported 2 images" in dlg.result.text()
    assert cli_main(["export", str(image_folder), "-f", "mvtec", "-o", str(tmp_path / "out_cli")]) == 0
    assert _files(out) == _files(tmp_path / "out_cli")
    assert any(f.startswith("parts/ground_truth/hole/") for f in _files(out))
    opened = []
    monkeypatch.setattr("zsas_gui.qt.export_dialog.QDesktopServices.openUrl", lambda url: opened.append(url))
    qtbot.mouseClick(dlg.open_button, Qt.MouseButton.LeftButton)
    assert opened and opened[0].toLocalFile() == str(out.resolve())
    dlg.close()


def test_export_problems_are_listed_and_nothing_is_written(make_window, image_folder, qtbot, tmp_path):
    w = make_window(None, image_folder)
    _review(w, qtbot)
    w.file_list.select("test/hole/000.png")
    w.controller.set_defect_class("good")            # a name the mvtec layout reserves
    dlg = _dialog(w, qtbot)
    dlg.format.setCurrentIndex(dlg.format.findData("mvtec"))
    out = tmp_path / "out"
    dlg.out.setText(str(out))
    for box in dlg.statuses.values():
        box.setChecked(False)
    assert not dlg.start()                             # no status chosen: said at once
    assert dlg.problems.isVisible() and "status" in dlg.problems.item(0).text()
    dlg.statuses["edited"].setChecked(True)
    dlg.statuses["good"].setChecked(True)
    assert dlg.start()
    qtbot.waitUntil(lambda: not dlg.running() and dlg.problems.isVisible(), timeout=300_000)
    texts = [dlg.problems.item(i).text() for i in range(dlg.problems.count())]
    assert any("reserved" in t and "good" in t for t in texts), texts
    assert "nothing was written" in dlg.result.text()
    assert not out.exists() and dlg.report is None and not dlg.open_button.isVisible()
    (out / "mine.txt").parent.mkdir()
    (out / "mine.txt").write_text("the user's file")  # a folder that is not an export: refused
    w.controller.set_defect_class("hole")
    assert dlg.start()
    qtbot.waitUntil(lambda: not dlg.running() and dlg.problems.isVisible(), timeout=300_000)
    assert "not empty" in dlg.problems.item(0).text()
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    dlg.close()


def test_export_without_a_folder_says_open_one_first(make_window, qtbot):
    w = make_window(None)
    w.actions["export"].trigger()
    assert w.findChild(ExportDialog) is None
    assert w.banner.isVisible() and "open a folder" in w.banner.text()
