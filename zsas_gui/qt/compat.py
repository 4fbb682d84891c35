"""Workarounds for defects of the Qt binding in use, each detected at run time, never assumed.

PySide6 6.12.0 on CPython 3.11 returns ``None`` from every void C++ method without taking a
reference to it (measured: ``sys.getrefcount(None)`` drops by one per ``QWidget.setEnabled``
call; 6.11.3 does not). CPython 3.12+ made ``None`` immortal, so there it is harmless; on 3.11
the app aborts after some thousand widget updates with "Fatal Python error: none_dealloc:
deallocating None". Install a PySide6 other than 6.12.0 on Python 3.11; until then
:func:`guard_none_refcount` detects the leak and makes ``None`` effectively immortal, as 3.12 does.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

_PROBE_CALLS = 64
#: Added to None's reference count when the leak is found (a leak of one per call never gets there).
_IMMORTAL_REFS = 1 << 40
_state = {"checked": False, "leaks": False}


def none_refcount_leak() -> bool:
    """True when a void PySide6 method call loses a reference to ``None`` (measured)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    return sys.getrefcount(None) - before <= -_PROBE_CALLS // 2


def guard_none_refcount() -> bool:
    """Detect the leak once per process; when found on a CPython without immortal ``None``, raise
    its reference count far beyond reach and log a warning. Returns True when the guard is on."""
    if _state["checked"]:
        return _state["leaks"]
    _state["checked"] = True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12) or not none_refcount_leak():
        return False
    import ctypes

    import PySide6

    ctypes.c_ssize_t.from_address(id(None)).value += _IMMORTAL_REFS
    _state["leaks"] = True
    log.warning("PySide6 %s leaks references to None on Python %d.%d (it would crash the app); "
                "worked around. Install another PySide6 version (6.11.x is not affected).",
                PySide6.__version__, *sys.version_info[:2])
    return True
