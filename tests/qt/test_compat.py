"""The None-refcount guard: on an affected PySide6/CPython pair, long sessions must not abort."""

import sys

from PySide6.QtWidgets import QCheckBox

from zsas_gui.qt.compat import guard_none_refcount, none_refcount_leak


def test_many_void_calls_do_not_exhaust_none(qapp):
    leaks = none_refcount_leak() and sys.version_info < (3, 12)
    assert guard_none_refcount() == leaks
    box = QCheckBox()
    for i in range(50_000):                 # far more than None's refcount in a small process
        box.setChecked(bool(i & 1))
    assert box.isChecked() is True
    if leaks:
        assert sys.getrefcount(None) > 1 << 39
