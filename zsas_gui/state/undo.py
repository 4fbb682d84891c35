"""A linear undo/redo stack of (before, after) state pairs. No Qt, no torch.

The stack does not know what a state is: the document pushes opaque values (its
:class:`~zsas_gui.state.document.EditState`, masks packed to bits by the document's
``pack``/``unpack`` hooks) and gets them back on undo/redo. Consecutive pushes with the same
non-None ``merge_key`` fold into one entry (a point drag, a slider being moved), as
``QUndoCommand.mergeWith`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Default number of entries kept; the oldest are forgotten beyond it.
DEFAULT_MAX_DEPTH = 100


@dataclass
class UndoEntry:
    """One undoable edit: the state before it and the state after it (as packed by the stack)."""

    label: str
    before: Any
    after: Any
    merge_key: Any = None


class UndoStack:
    """Linear history: ``push`` drops the redo branch; ``undo``/``redo`` return the state to restore.

    ``pack`` turns a state into what is stored (e.g. masks to bits), ``unpack`` reverses it; both
    default to the identity.
    """

    def __init__(self, max_depth: int = DEFAULT_MAX_DEPTH,
                 pack: Callable[[Any], Any] | None = None, unpack: Callable[[Any], Any] | None = None):
        if max_depth < 1:
            raise ValueError(f"max_depth must be >= 1, got {max_depth}")
        self.max_depth = max_depth
        self._pack = pack or (lambda s: s)
        self._unpack = unpack or (lambda s: s)
        self._entries: list[UndoEntry] = []
        self._index = 0          # entries[:index] are applied; entries[index:] can be redone
        self._merge_open = True  # False after undo/redo: the next push never merges

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._entries)

    @property
    def undo_label(self) -> str | None:
        return self._entries[self._index - 1].label if self.can_undo else None

    @property
    def redo_label(self) -> str | None:
        return self._entries[self._index].label if self.can_redo else None

    def push(self, label: str, before: Any, after: Any, merge_key: Any = None) -> UndoEntry:
        """Record an edit already applied by the caller; merges with the top entry when
        ``merge_key`` is not None and equals the top entry's key."""
        del self._entries[self._index:]
        top = self._entries[-1] if self._entries else None
        if (merge_key is not None and self._merge_open and top is not None
                and top.merge_key == merge_key):
            top.after = self._pack(after)
            return top
        entry = UndoEntry(label, self._pack(before), self._pack(after), merge_key)
        self._entries.append(entry)
        if len(self._entries) > self.max_depth:
            del self._entries[0]
        self._index = len(self._entries)
        self._merge_open = True
        return entry

    def close_merge(self) -> None:
        """End the current merge run (e.g. on mouse release): the next push starts a new entry."""
        self._merge_open = False

    def undo(self) -> tuple[UndoEntry, Any] | None:
        """Step back; returns (entry, the state before it) or None when there is nothing to undo."""
        if not self.can_undo:
            return None
        self._index -= 1
        self._merge_open = False
        entry = self._entries[self._index]
        return entry, self._unpack(entry.before)

    def redo(self) -> tuple[UndoEntry, Any] | None:
        """Step forward; returns (entry, the state after it) or None when there is nothing to redo."""
        if not self.can_redo:
            return None
        entry = self._entries[self._index]
        self._index += 1
        self._merge_open = False
        return entry, self._unpack(entry.after)

    def amend(self, entry: UndoEntry, side: str, state: Any) -> None:
        """Replace ``entry.before`` or ``entry.after`` (``side``) — used when an asynchronous
        result completes a state that was pending when the entry was recorded."""
        if side not in ("before", "after"):
            raise ValueError(f"side must be 'before' or 'after', got {side!r}")
        if any(e is entry for e in self._entries):
            setattr(entry, side, self._pack(state))

    def clear(self) -> None:
        self._entries.clear()
        self._index = 0
