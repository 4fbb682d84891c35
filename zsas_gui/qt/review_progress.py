"""Review progress in the status bar, always visible ("37 / 50 reviewed (30 accepted, 4 rejected,
3 good)"), the image list's status and class filter above it, and auto-advance to the next unreviewed image after
accept / reject / good (a setting, on by default, as CVAT does)."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..vocabulary import DEFECT_STATUSES, STATUSES
from .panels import STATUS_STYLE, FileList
from .settings import app_settings

ALL = ""
#: status filter entries: (text, statuses kept; empty: all)
STATUS_FILTERS = (
    ("All images", ()),
    ("Unreviewed", ("unreviewed",)),
    ("Reviewed", tuple(s for s in STATUSES if s != "unreviewed")),
    ("Accepted (incl. edited)", DEFECT_STATUSES),
    ("Rejected", ("rejected",)),
    ("Good", ("good",)),
    ("Unreadable", ("unreadable",)),
)
#: what each review action leaves as the image's status when it succeeded
REVIEW_RESULT = {"accept": DEFECT_STATUSES, "reject": ("rejected",), "mark_good": ("good",)}


def progress_text(counts: dict[str, int]) -> str:
    """``counts``: images per status. Edited images (accepted after a hand edit) count as accepted;
    unreadable ones (never reviewable) are counted apart, not in the total."""
    total = sum(counts.values()) - counts.get("unreadable", 0)
    accepted = counts.get("accepted", 0) + counts.get("edited", 0)
    rejected, good = counts.get("rejected", 0), counts.get("good", 0)
    reviewed = accepted + rejected + good
    text = f"{reviewed} / {total} reviewed ({accepted} accepted, {rejected} rejected, {good} good)"
    if counts.get("unreadable"):
        text += f" · {counts['unreadable']} unreadable"
    return text


class ReviewPanel(QWidget):
    """The Images dock's contents: the filter row and the file list; ``progress`` (the count) is
    placed in the status bar by :func:`install`."""

    def __init__(self, file_list: FileList, parent: QWidget | None = None):
        super().__init__(parent)
        self.file_list = file_list
        self.progress = QLabel("")
        self.progress.setObjectName("review_progress")
        self.progress.setStyleSheet("font-weight:bold;padding:0 6px;")
        self.status_filter = QComboBox()
        self.status_filter.setObjectName("status_filter")
        for text, statuses in STATUS_FILTERS:
            self.status_filter.addItem(text, statuses)
        self.class_filter = QComboBox()
        self.class_filter.setObjectName("class_filter")
        self.class_filter.addItem("All classes", ALL)
        for combo in (self.status_filter, self.class_filter):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        row = QHBoxLayout()
        row.addWidget(self.status_filter, 1)
        row.addWidget(self.class_filter, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(row)
        lay.addWidget(file_list, 1)
        self.status_filter.currentIndexChanged.connect(lambda _i: self.apply_filter())
        self.class_filter.currentIndexChanged.connect(lambda _i: self.apply_filter())
        self.refresh()

    def set_classes(self, classes: list[str]) -> None:
        """The classes offered by the class filter."""
        cur = self.class_filter.currentData()
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("All classes", ALL)
        for c in sorted({c for c in classes if c}):
            self.class_filter.addItem(c, c)
        self.class_filter.setCurrentIndex(max(0, self.class_filter.findData(cur)))
        self.class_filter.blockSignals(False)

    def keep(self, rel: str) -> bool:
        statuses = self.status_filter.currentData() or ()
        cls = self.class_filter.currentData() or ALL
        return ((not statuses or self.file_list.status_of(rel) in statuses)
                and (cls == ALL or self.file_list.class_of(rel) == cls))

    def apply_filter(self) -> None:
        active = bool(self.status_filter.currentData()) or bool(self.class_filter.currentData())
        self.file_list.set_filter(self.keep if active else None)
        self.refresh()

    def refresh(self, *_args) -> None:
        counts = self.file_list.counts()
        text = progress_text(counts)
        shown = len(self.file_list.ordered())
        if shown != sum(counts.values()):
            text += f" · {shown} shown"
        self.progress.setText(text)
        self.progress.setToolTip(", ".join(f"{n} {STATUS_STYLE[s][2]}" for s, n in counts.items() if n))


def auto_advance_enabled() -> bool:
    return str(app_settings().value("review/auto_advance", "true")).lower() in ("true", "1")


def set_auto_advance(on: bool) -> None:
    app_settings().setValue("review/auto_advance", bool(on))


def review(window, action: str) -> None:
    """Run review ``action`` (accept, reject, mark_good) on the current image; when it took and
    auto-advance is on, go to the next unreviewed image."""
    c = window.controller
    doc = c.doc
    getattr(c, action)()
    if doc is None or c.doc is not doc or doc.status not in REVIEW_RESULT[action]:
        return
    if window.actions["auto_advance"].isChecked():
        window.next_unreviewed()


def install(window) -> ReviewPanel:
    """Put the review panel into the window's Images dock, its count into the status bar, and
    wire progress, filter, classes and the auto-advance setting."""
    panel = ReviewPanel(window.file_list)
    window.findChild(QWidget, "files_dock").setWidget(panel)
    window.statusBar().addPermanentWidget(panel.progress)
    window.actions["auto_advance"].setChecked(auto_advance_enabled())   # toggling saves (set_auto_advance)
    window.controller.image_updated.connect(lambda *_: panel.refresh())
    window.controller.document_shown.connect(panel.refresh)
    window.file_list.status_changed.connect(panel.refresh)       # also what the window learns later

    def class_changed(name: str) -> None:
        rel = window.file_list.current_rel()
        if rel is not None:
            window.file_list.set_class(rel, name)
            panel.set_classes(window.file_list.classes())

    window.review_box.defect_class_changed.connect(class_changed)
    return panel


def folder_opened(window, project) -> None:
    """Fill the class of every image (stored class, else its folder's name) and the filters."""
    panel: ReviewPanel = window.review_panel
    for e in project.images:
        window.file_list.set_class(e.rel, project.defect_class(e.rel) or folder_class(e.rel))
    panel.set_classes(window.file_list.classes())
    panel.apply_filter()


def folder_class(rel: str) -> str:
    """The class a folder layout implies: the parent folder's name (``test/scratch/000.png`` ->
    ``scratch``); "" at the top level. ``good`` is a status, not a class."""
    parts = rel.split("/")
    name = parts[-2] if len(parts) > 1 else ""
    return "" if name == "good" else name

