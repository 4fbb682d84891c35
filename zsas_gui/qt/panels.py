"""The file list (status icon, anomaly score, sortable) and the review box (status, defect class)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: status -> (qtawesome icon, colour, short text)
STATUS_STYLE = {
    "unreviewed": ("fa5s.circle", "#888888", "unreviewed"),
    "accepted": ("fa5s.check-circle", "#3cc864", "accepted"),
    "edited": ("fa5s.pen", "#45a0ff", "edited"),
    "rejected": ("fa5s.times-circle", "#e63c3c", "rejected"),
    "good": ("fa5s.thumbs-up", "#e0b020", "good (no defect)"),
    "unreadable": ("fa5s.exclamation-triangle", "#e6a23c", "unreadable (cannot be opened)"),
}
COL_STATUS, COL_NAME, COL_SCORE = range(3)
_SORT_ROLE = Qt.ItemDataRole.UserRole + 1
_CLASS_ROLE = Qt.ItemDataRole.UserRole + 2


class _Item(QTreeWidgetItem):
    """Sorts by a per-column key (numbers as numbers; images without a score last)."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        col = self.treeWidget().sortColumn() if self.treeWidget() else COL_NAME
        a, b = self.data(col, _SORT_ROLE), other.data(col, _SORT_ROLE)
        if a is None or b is None:
            return self.text(col) < other.text(col)
        return a < b


class FileList(QTreeWidget):
    """One row per image: status icon, relative path, image score. Emits ``image_chosen(rel)``,
    and ``status_changed(rel)`` when a row's status changes."""

    image_chosen = Signal(str)
    status_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("file_list")
        self.setColumnCount(3)
        self.setHeaderLabels(["", "Image", "Score"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setSortingEnabled(True)
        self.sortByColumn(COL_NAME, Qt.SortOrder.AscendingOrder)
        h = self.header()
        h.setSectionResizeMode(COL_STATUS, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(COL_SCORE, QHeaderView.ResizeMode.ResizeToContents)
        h.setStretchLastSection(False)
        self._items: dict[str, _Item] = {}
        self._icons: dict[str, object] = {}
        self.currentItemChanged.connect(self._on_current)

    def _icon(self, status: str):
        if status not in self._icons:
            import qtawesome as qta  # after the QApplication exists

            name, colour, _ = STATUS_STYLE[status]
            self._icons[status] = qta.icon(name, color=colour)
        return self._icons[status]

    def set_images(self, rows: list[tuple[str, str, float | None]]) -> None:
        """``rows``: (rel, status, image score or None), in project order."""
        self.blockSignals(True)
        self.setSortingEnabled(False)
        self.clear()
        self._items.clear()
        for order, (rel, status, score) in enumerate(rows):
            item = _Item(self)
            item.setText(COL_NAME, rel)
            item.setToolTip(COL_NAME, rel)
            item.setData(COL_NAME, _SORT_ROLE, order)
            item.setData(COL_NAME, Qt.ItemDataRole.UserRole, rel)
            self._items[rel] = item
            self._style(item, status, score)
        self.setSortingEnabled(True)
        self.blockSignals(False)

    def _style(self, item: _Item, status: str, score: float | None) -> None:
        item.setIcon(COL_STATUS, self._icon(status))
        item.setToolTip(COL_STATUS, STATUS_STYLE[status][2])
        item.setData(COL_STATUS, _SORT_ROLE, list(STATUS_STYLE).index(status))
        item.setData(COL_STATUS, Qt.ItemDataRole.UserRole, status)
        item.setText(COL_SCORE, "" if score is None else f"{score:.3f}")
        item.setData(COL_SCORE, _SORT_ROLE, -1.0 if score is None else float(score))
        item.setTextAlignment(COL_SCORE, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def update_image(self, rel: str, status: str | None = None, score: float | None = None) -> None:
        item = self._items.get(rel)
        if item is None:
            return
        old_status = item.data(COL_STATUS, Qt.ItemDataRole.UserRole)
        old_score = item.data(COL_SCORE, _SORT_ROLE)
        self._style(item, status or old_status,
                    score if score is not None else (None if old_score is None or old_score < 0 else old_score))
        if status is not None and status != old_status:
            self.status_changed.emit(rel)

    def clear_score(self, rel: str) -> None:
        """No score shown for ``rel`` (sorted last by score)."""
        item = self._items.get(rel)
        if item is not None:
            self._style(item, item.data(COL_STATUS, Qt.ItemDataRole.UserRole), None)

    def status_of(self, rel: str) -> str:
        return self._items[rel].data(COL_STATUS, Qt.ItemDataRole.UserRole)

    def score_of(self, rel: str) -> float | None:
        v = self._items[rel].data(COL_SCORE, _SORT_ROLE)
        return None if v is None or v < 0 else float(v)

    def ordered(self) -> list[str]:
        """Image rels in the order shown (after sorting), rows hidden by the filter left out."""
        return [item.data(COL_NAME, Qt.ItemDataRole.UserRole) for item in self._rows() if not item.isHidden()]

    def _rows(self) -> list[_Item]:
        return [self.topLevelItem(i) for i in range(self.topLevelItemCount())]

    def counts(self) -> dict[str, int]:
        """Images per status as the list shows them (every row, filtered or not)."""
        counts = dict.fromkeys(STATUS_STYLE, 0)
        for item in self._rows():
            counts[item.data(COL_STATUS, Qt.ItemDataRole.UserRole)] += 1
        return counts

    def set_class(self, rel: str, name: str) -> None:
        """The defect class of ``rel`` (for the class filter)."""
        if rel in self._items:
            self._items[rel].setData(COL_NAME, _CLASS_ROLE, name)

    def class_of(self, rel: str) -> str:
        return self._items[rel].data(COL_NAME, _CLASS_ROLE) or ""

    def classes(self) -> list[str]:
        """The defect classes of every row, sorted, without ""."""
        return sorted({item.data(COL_NAME, _CLASS_ROLE) for item in self._rows()} - {None, ""})

    def set_filter(self, keep) -> None:
        """Show only rows whose rel passes ``keep(rel)`` (None: every row); the current row stays."""
        cur = self.currentItem()
        for item in self._rows():
            rel = item.data(COL_NAME, Qt.ItemDataRole.UserRole)
            item.setHidden(keep is not None and item is not cur and not keep(rel))

    def current_rel(self) -> str | None:
        item = self.currentItem()
        return None if item is None else item.data(COL_NAME, Qt.ItemDataRole.UserRole)

    def select(self, rel: str) -> None:
        """Make ``rel`` current (emits ``image_chosen`` if it changes)."""
        item = self._items.get(rel)
        if item is not None and item is not self.currentItem():
            self.setCurrentItem(item)
            self.scrollToItem(item)

    def neighbour(self, step: int) -> str | None:
        rels = self.ordered()
        cur = self.current_rel()
        if not rels:
            return None
        if cur not in rels:
            return rels[0]
        i = rels.index(cur) + step
        return rels[i] if 0 <= i < len(rels) else None

    def next_unreviewed(self) -> str | None:
        """The next unreviewed image after the current one (wrapping around), or None."""
        rels = self.ordered()
        cur = self.current_rel()
        start = rels.index(cur) + 1 if cur in rels else 0
        for rel in rels[start:] + rels[:start]:
            if rel != cur and self.status_of(rel) == "unreviewed":
                return rel
        return None

    def _on_current(self, current, _previous) -> None:
        if current is not None:
            self.image_chosen.emit(current.data(COL_NAME, Qt.ItemDataRole.UserRole))


class ReviewBox(QGroupBox):
    """Review status of the current image, the defect class, and the review buttons."""

    defect_class_changed = Signal(str)

    def __init__(self, actions: dict, parent: QWidget | None = None):
        super().__init__("Review", parent)
        lay = QVBoxLayout(self)
        self.status_label = QLabel("—")
        self.status_label.setObjectName("review_status")
        lay.addWidget(self.status_label)
        row = QHBoxLayout()
        for key in ("accept", "reject", "mark_good"):
            b = QPushButton(actions[key].icon(), actions[key].text().replace("&", ""))
            b.setToolTip(actions[key].toolTip())
            b.clicked.connect(actions[key].trigger)
            row.addWidget(b)
        lay.addLayout(row)
        crow = QHBoxLayout()
        crow.addWidget(QLabel("Defect class"))
        self.class_combo = QComboBox()
        self.class_combo.setObjectName("defect_class")
        self.class_combo.setEditable(True)
        self.class_combo.setInsertPolicy(QComboBox.InsertPolicy.InsertAtBottom)
        self.class_combo.lineEdit().editingFinished.connect(self._emit_class)
        self.class_combo.activated.connect(lambda _i: self._emit_class())
        crow.addWidget(self.class_combo, 1)
        lay.addLayout(crow)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setObjectName("review_hint")
        lay.addWidget(self.hint)

    def _emit_class(self) -> None:
        self.defect_class_changed.emit(self.class_combo.currentText().strip())

    def set_classes(self, classes: list[str]) -> None:
        cur = self.class_combo.currentText()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItems(sorted({c for c in classes if c}))
        self.class_combo.setEditText(cur)
        self.class_combo.blockSignals(False)

    def show_document(self, status: str | None, defect_class: str, hint: str = "") -> None:
        self.status_label.setText("—" if status is None else f"Status: {STATUS_STYLE[status][2]}")
        self.class_combo.blockSignals(True)
        if defect_class and self.class_combo.findText(defect_class) < 0:
            self.class_combo.addItem(defect_class)
        self.class_combo.setEditText(defect_class)
        self.class_combo.blockSignals(False)
        self.hint.setText(hint)

    def focus_class(self) -> None:
        self.class_combo.setFocus()
        self.class_combo.lineEdit().selectAll()



class StatusWidgets:
    """Status bar contents: stage progress with a cancel button; zoom; device, precision, memory."""

    def __init__(self, bar: QStatusBar, cancel_action):
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("progress_label")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(120)
        self.progress_bar.setVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setDefaultAction(cancel_action)
        self.cancel_button.setVisible(False)
        self.zoom = QLabel("")
        self.device = QLabel("no models")
        self.device.setObjectName("device_label")
        for w in (self.progress_label, self.progress_bar, self.cancel_button):
            bar.addWidget(w)
        bar.addPermanentWidget(self.zoom)
        bar.addPermanentWidget(self.device)

    def show_progress(self, text: str, step: int, total: int) -> None:
        """``text`` "" hides the progress; ``step`` 0 shows a busy bar (encoding)."""
        busy = bool(text)
        self.progress_label.setText(text)
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress_bar.setRange(0, total if step else 0)
            self.progress_bar.setValue(step)

    def show_zoom(self, zoom: float) -> None:
        self.zoom.setText(f"{zoom * 100:.0f} %")
