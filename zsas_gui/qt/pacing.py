"""How edits are paced onto the inference lane (GUI thread only).

- :class:`Debounce`: after an edit, request once the user paused ``quiet_ms``, but at least every
  ``max_wait_ms`` during continuous edits (slider drags).
- :class:`DragFollower`: while a point is dragged, at most one refinement is in flight. The
  marker follows the mouse; the document's point follows at the lane's pace (each result is for
  the document's current revision, so it is shown, live, instead of being dropped as stale).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer


class Debounce(QObject):
    """Calls ``fire()`` after ``quiet_ms`` without a :meth:`poke`, or at once when the first poke
    of a burst is ``max_wait_ms`` old. :meth:`reset` forgets the burst (the caller just fired)."""

    def __init__(self, fire: Callable[[], object], quiet_ms: int, max_wait_ms: int,
                 parent: QObject | None = None):
        super().__init__(parent)
        self._fire, self.max_wait_ms = fire, max_wait_ms
        self._first: float | None = None       # monotonic time of the burst's first poke
        self._timer = QTimer(self, singleShot=True, interval=quiet_ms)
        self._timer.timeout.connect(fire)

    def poke(self) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = now
        if (now - self._first) * 1000 >= self.max_wait_ms:
            self._fire()
        else:
            self._timer.start()

    def reset(self) -> None:
        self._timer.stop()
        self._first = None


class DragFollower:
    """One drag's pace. ``apply(image_id, index, x, y)`` moves the document's point and sends the
    refinement, returning the (image id, revision) it sent, or None when nothing was sent."""

    def __init__(self, apply: Callable[[str, int, float, float], tuple[str, int] | None]):
        self._apply = apply
        self.waiting: tuple[str, int, float, float] | None = None   # a position not yet applied
        self.in_flight: tuple[str, int] | None = None    # (image id, revision) being refined

    def move(self, image_id: str, index: int, x: float, y: float) -> None:
        self.waiting = (image_id, index, x, y)
        if self.in_flight is None:
            self._commit()

    def settled(self, image_id: str, revision: int) -> None:
        """A request finished (result, cancel or error): apply the latest position if it was ours."""
        if self.in_flight == (image_id, revision):
            self.in_flight = None
            self._commit()

    def end(self) -> None:
        """The drag ended: apply the last position; the next drag starts afresh."""
        self._commit()
        self.in_flight = None

    def _commit(self) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            self.in_flight = self._apply(*waiting)
