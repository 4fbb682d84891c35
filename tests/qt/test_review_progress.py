"""Review progress always visible, the list filter by status and class, auto-advance."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from zsas_gui.qt.review_progress import progress_text


def _key(w, qtbot, key):
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    w.file_list.setFocus()
    qtbot.keyClick(w.file_list, key)


def test_progress_text_counts_edited_as_accepted():
    counts = {"unreviewed": 13, "accepted": 28, "edited": 2, "rejected": 4, "good": 3, "unreadable": 0}
    assert progress_text(counts) == "37 / 50 reviewed (30 accepted, 4 rejected, 3 good)"


def test_review_keys_advance_to_the_next_unreviewed_and_the_count_follows(make_window, image_folder, qtbot):
    w = make_window(None, image_folder)               # no models: reject and good need no mask
    label = w.review_panel.progress
    assert label.isVisible() and label.text() == "0 / 7 reviewed (0 accepted, 0 rejected, 0 good)"
    assert w.actions["auto_advance"].isChecked()      # on by default
    rels = w.file_list.ordered()
    _key(w, qtbot, Qt.Key.Key_X)                      # reject, then the next unreviewed opens
    assert w.file_list.status_of(rels[0]) == "rejected" and w.controller.doc.image_id == rels[1]
    _key(w, qtbot, Qt.Key.Key_G)
    assert w.controller.doc.image_id == rels[2]
    assert label.text() == "2 / 7 reviewed (0 accepted, 1 rejected, 1 good)"
    w.file_list.select(rels[0])                       # an already reviewed image: next unreviewed is rels[2]
    _key(w, qtbot, Qt.Key.Key_G)
    assert w.controller.doc.image_id == rels[2]
    assert label.text() == "2 / 7 reviewed (0 accepted, 0 rejected, 2 good)"
    _key(w, qtbot, Qt.Key.Key_A)                      # accept without a mask fails: no advance
    assert w.controller.doc.image_id == rels[2] and w.banner.isVisible()
    w.actions["auto_advance"].trigger()               # off (and remembered)
    _key(w, qtbot, Qt.Key.Key_X)
    assert w.controller.doc.image_id == rels[2]
    w.close()
    w2 = make_window(None, image_folder)
    assert not w2.actions["auto_advance"].isChecked()
    assert w2.review_panel.progress.text() == "3 / 7 reviewed (0 accepted, 1 rejected, 2 good)"


def test_the_list_filters_by_status_and_class(make_window, image_folder, qtbot):
    w = make_window(None, image_folder)
    w.actions["auto_advance"].setChecked(False)
    panel, fl = w.review_panel, w.file_list
    assert set(fl.classes()) == {"hole", "scratch"}
    assert [panel.class_filter.itemText(i) for i in range(panel.class_filter.count())] == [
        "All classes", "hole", "scratch"]
    fl.select("test/hole/000.png")
    w.controller.reject()
    fl.select("train/good/001.png")
    panel.class_filter.setCurrentIndex(panel.class_filter.findData("scratch"))
    assert fl.ordered() == ["test/scratch/000.png", "test/scratch/001.png", "train/good/001.png"]  # + current
    assert panel.progress.text().endswith("· 3 shown")
    fl.select("test/scratch/000.png")
    panel.apply_filter()
    assert fl.ordered() == ["test/scratch/000.png", "test/scratch/001.png"]
    panel.class_filter.setCurrentIndex(0)
    panel.status_filter.setCurrentIndex(panel.status_filter.findText("Rejected"))
    assert fl.ordered() == ["test/hole/000.png", "test/scratch/000.png"]          # the current row stays
    panel.status_filter.setCurrentIndex(panel.status_filter.findText("Unreviewed"))
    assert "test/hole/000.png" not in fl.ordered() and len(fl.ordered()) == 6
    assert fl.neighbour(1) == "test/scratch/001.png"                            # navigation skips hidden rows
    w.review_box.class_combo.setEditText("crack")                              # a class set by hand
    w.review_box.defect_class_changed.emit("crack")
    assert fl.class_of("test/scratch/000.png") == "crack" and "crack" in fl.classes()
    assert panel.class_filter.findData("crack") >= 0


def test_an_unreadable_image_is_counted_apart_as_soon_as_it_is_chosen(make_window, image_folder, qtbot):
    """Found re-checking the app on ../shared/data/demo: choosing a text file named .png showed it
    as unreadable in the list but the count still said "0 / 4 reviewed" (refreshed before the list
    learned the status), and an unreadable image can never be reviewed, so it is not in the total."""
    (image_folder / "test/scratch/zz_text.png").write_text("not an image")
    w = make_window(None, image_folder)
    w.actions["auto_advance"].setChecked(False)
    label = w.review_panel.progress
    assert label.text() == "0 / 8 reviewed (0 accepted, 0 rejected, 0 good)"      # not known yet
    w.file_list.select("test/scratch/zz_text.png")
    assert w.file_list.status_of("test/scratch/zz_text.png") == "unreadable"
    assert label.text() == "0 / 7 reviewed (0 accepted, 0 rejected, 0 good) · 1 unreadable"


def test_progress_text_leaves_unreadable_images_out_of_the_total():
    counts = {"unreviewed": 0, "accepted": 2, "rejected": 1, "good": 0, "unreadable": 1}
    assert progress_text(counts) == "3 / 3 reviewed (2 accepted, 1 rejected, 0 good) · 1 unreadable"
