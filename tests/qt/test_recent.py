"""Start where the user left off: no folder argument reopens the last folder at the last image;
File → Open Recent lists the folders opened lately."""

import shutil

from PySide6.QtWidgets import QMenu

from zsas_gui.app import build_parser, launch


def _launch(qtbot, argv):
    w = launch(build_parser().parse_args(argv))
    qtbot.addWidget(w)
    if w._no_models_dialog is not None:
        w._no_models_dialog.close()
    return w


def test_no_argument_reopens_the_last_folder_at_the_last_image(image_folder, tmp_path, monkeypatch, qtbot):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "no-models"))
    w = _launch(qtbot, [str(image_folder)])
    try:
        w.file_list.select("test/scratch/001.png")
        assert w.controller.doc.image_id == "test/scratch/001.png"
    finally:
        w.close()
    w2 = _launch(qtbot, [])
    try:
        assert w2.controller.project is not None and w2.controller.project.root == image_folder.resolve()
        assert w2.controller.doc.image_id == "test/scratch/001.png"
        assert w2.file_list.current_rel() == "test/scratch/001.png"
    finally:
        w2.close()


def test_open_recent_lists_folders_newest_first_and_opens_them(make_window, image_folder, tmp_path, qtbot):
    other = tmp_path / "other"
    shutil.copytree(image_folder, other)
    gone = tmp_path / "gone"
    shutil.copytree(image_folder, gone)
    w = make_window(None)
    for folder in (gone, image_folder, other):
        assert w.open_folder(folder)
    shutil.rmtree(gone)
    menu = w.findChild(QMenu, "recent_menu")
    menu.aboutToShow.emit()
    entries = [a for a in menu.actions() if not a.isSeparator()]
    texts = [a.text() for a in entries]
    assert texts[:3] == [str(other.resolve()), str(image_folder.resolve()), f"{gone.resolve()} (missing)"]
    assert [a.isEnabled() for a in entries[:3]] == [True, True, False]
    entries[1].trigger()
    assert w.controller.project.root == image_folder.resolve()
    entries[-1].trigger()                           # Clear list
    menu.aboutToShow.emit()
    assert next(a.text() for a in menu.actions() if not a.isSeparator()) == "(no folder opened yet)"


def test_without_a_recent_folder_the_app_opens_empty(tmp_path, monkeypatch, qtbot):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "no-models"))
    w = _launch(qtbot, [])
    try:
        assert w.controller.project is None and w.windowTitle() == "zsas-gui"
    finally:
        w.close()
