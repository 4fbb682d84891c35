"""Value widgets (spin boxes, sliders, combo boxes) behave as panel controls, not as editors:

- they take the mouse wheel only when focused (as superqt and napari do). Without this,
  scrolling a panel with the cursor passing over a spin box changes its value (and re-runs the
  refinement); now the panel scrolls instead;
- Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y) reach the window's Undo/Redo even while a spin box has focus
  (a spin box would otherwise claim them for its own text undo and the keys would do nothing).
  Free-text fields (text prompts, the defect class) keep their own text undo.

:func:`guard_values` gives every such widget under a root ``Qt.StrongFocus`` (a wheel no longer
focuses it) and one event filter.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeySequence, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
    QWidget,
)

#: The widget kinds whose value the wheel changes.
VALUE_WIDGETS = (QAbstractSpinBox, QAbstractSlider, QComboBox)
_WINDOW_KEYS = (QKeySequence.StandardKey.Undo, QKeySequence.StandardKey.Redo)


class ValueGuard(QObject):
    """The event filter. A wheel event on an unfocused widget is filtered and handed to the
    nearest scroll area around it (which scrolls). A shortcut-override
    for undo/redo on a spin box is filtered without being accepted, so the window's shortcut
    fires instead of the spin box's text undo."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            area = _scroll_area_of(obj)
            if area is not None:
                QApplication.sendEvent(area.viewport(), QWheelEvent(
                    event.position(), event.globalPosition(), event.pixelDelta(), event.angleDelta(),
                    event.buttons(), event.modifiers(), event.phase(), event.inverted()))
            return True
        if kind == QEvent.Type.ShortcutOverride and isinstance(obj, QAbstractSpinBox) and _is_undo_redo(event):
            event.ignore()
            return True
        return False


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    w = widget.parentWidget()
    while w is not None and not isinstance(w, QAbstractScrollArea):
        w = w.parentWidget()
    return w


def _is_undo_redo(event) -> bool:
    return any(event.matches(k) for k in _WINDOW_KEYS)


def guard_values(root: QWidget) -> ValueGuard:
    """Guard every value widget under ``root``; call again after adding widgets (one already
    guarded is left as it is). Returns the guard (a child of ``root``)."""
    guard = root.findChild(ValueGuard, "value_guard")
    if guard is None:
        guard = ValueGuard(root)
        guard.setObjectName("value_guard")
    for kind in VALUE_WIDGETS:
        for w in root.findChildren(kind):
            if w.property("value_guarded") or isinstance(w, QScrollBar):   # scroll bars scroll
                continue
            w.setProperty("value_guarded", True)
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            w.installEventFilter(guard)
    return guard
