"""A message centred over the canvas: why an image cannot be shown, what the app is waiting for
(models loading, the first encode) with progress where known. It never takes the mouse."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QFrame, QLabel, QProgressBar, QVBoxLayout, QWidget

_STYLE = {
    "info": "background:rgba(30,30,30,215);color:white;border-radius:8px;padding:10px;",
    "error": "background:rgba(107,31,31,230);color:white;border-radius:8px;padding:10px;",
}


class CanvasOverlay(QFrame):
    """Child of the canvas viewport; re-centred when the viewport resizes."""

    def __init__(self, viewport: QWidget):
        super().__init__(viewport)
        self.setObjectName("canvas_overlay")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        lay = QVBoxLayout(self)
        self._label = QLabel("")
        self._label.setObjectName("canvas_overlay_text")
        self._label.setWordWrap(True)
        self._label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._bar = QProgressBar()
        self._bar.setTextVisible(False)
        self._bar.setMaximumHeight(8)
        lay.addWidget(self._label)
        lay.addWidget(self._bar)
        self.kind = ""
        viewport.installEventFilter(self)
        self.hide()

    def show_message(self, text: str, kind: str = "info", progress: tuple[int, int] | None = None) -> None:
        """``kind`` "info" or "error"; ``progress`` (step, total): a bar (total 0: busy), None: no bar."""
        self.kind = kind
        self.setStyleSheet(f"QFrame#canvas_overlay{{{_STYLE[kind]}}} QLabel{{color:white;}}")
        self._label.setText(text)
        self._bar.setVisible(progress is not None)
        if progress is not None:
            step, total = progress
            self._bar.setRange(0, total)
            self._bar.setValue(step)
        self._place()
        self.show()
        self.raise_()

    def clear(self, kind: str | None = None) -> None:
        """Hide the message (only if it is of ``kind``, when given)."""
        if kind is None or kind == self.kind:
            self.kind = ""
            self.hide()

    def text(self) -> str:
        return self._label.text()

    def _place(self) -> None:
        parent = self.parentWidget()
        width = max(200, min(520, parent.width() - 40))
        self.setFixedWidth(width)
        self.adjustSize()
        self.move((parent.width() - self.width()) // 2, (parent.height() - self.height()) // 2)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        return False
