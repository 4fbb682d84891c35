"""Threads: a registry of the QThreads the app starts (tests prove none is left running), worker
priority, and keeping the garbage collector from stopping every thread."""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref

from PySide6.QtCore import QThread

log = logging.getLogger(__name__)
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


def user_message(exc: BaseException) -> str:
    """What the user reads for ``exc`` caught on a worker thread: a ZsasError's own message
    (it says what to do), anything else with its type."""
    from ..core.errors import ZsasError

    return str(exc) if isinstance(exc, ZsasError) else f"{type(exc).__name__}: {exc}"


class FunctionThread(QThread):
    """A QThread that runs ``fn()`` (PySide calls the Python ``run`` override in the new thread)."""

    def __init__(self, fn, name: str = "zsas-worker", parent=None):
        super().__init__(parent)
        self._fn = fn
        self.setObjectName(name)
        track(self)

    def run(self) -> None:
        self._fn()


#: Native modules whose import holds the GIL for long: ``onnx`` (its protobuf descriptors:
#: 0.8-2.5 s on 2 loaded cores), which the lane's decoder warm-up imports (core/sam/onnx_cache.py).
GIL_HEAVY_IMPORTS = ("onnx", "onnxruntime")


def preload_gil_heavy_modules() -> None:
    """Import :data:`GIL_HEAVY_IMPORTS` (those installed) now. Called before the window is shown:
    a background thread importing them would freeze the visible window for as long, since an
    extension module's initialisation never lets go of the GIL."""
    import importlib
    import importlib.util

    for name in GIL_HEAVY_IMPORTS:
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            try:
                importlib.import_module(name)
            except ImportError as exc:       # the lane reports a broken install when it needs it
                log.info("could not preload %s: %s", name, exc)


_frozen: set[str] = set()


def freeze_heap(when: str) -> None:
    """Once per process and ``when`` (``"window"``, ``"models"``): move every object alive now
    (libraries, models, widgets) out of the cyclic garbage collector's reach (``gc.freeze``).
    With torch loaded a full collection walks millions of objects and stops every thread for
    100-400 ms; after this it walks only what the session creates. Reference counting still
    frees frozen objects; only cyclic garbage alive at that moment is kept, hence once."""
    import gc

    if when not in _frozen:
        _frozen.add(when)
        gc.freeze()


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (Linux: per thread; threads it creates,
    such as torch's OpenMP workers, inherit it)."""
    if nice <= 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError as exc:
        log.info("could not lower the lane's priority: %s", exc)
