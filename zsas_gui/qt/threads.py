"""A registry of the QThreads the app starts, so tests can prove none is left running."""

from __future__ import annotations

import weakref

from PySide6.QtCore import QThread

_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def track(thread: QThread) -> QThread:
    """Remember ``thread`` (weakly) and return it."""
    _THREADS.add(thread)
    return thread


def running_threads() -> list[QThread]:
    """Tracked threads that are still running."""
    out = []
    for t in list(_THREADS):
        try:
            if t.isRunning():
                out.append(t)
        except RuntimeError:   # the C++ object is gone
            continue
    return out


class FunctionThread(QThread):
    """A QThread that runs ``fn()`` (PySide calls the Python ``run`` override in the new thread)."""

    def __init__(self, fn, name: str = "zsas-worker", parent=None):
        super().__init__(parent)
        self._fn = fn
        self.setObjectName(name)
        track(self)

    def run(self) -> None:
        self._fn()
