"""Model downloads on a worker thread, for the dialogs that offer them ("Models needed", the model
manager): the thread, its cancel flag and the queued signals back to the GUI thread, set up once.

    downloads = ModelDownloads(self, "zsas-download")
    downloads.progress.connect(on_progress)     # (model name, done bytes, total bytes or None)
    downloads.finished.connect(on_finished)     # ("" or the error message for the user)
    downloads.start(specs)                      # one after the other; download_fn replaceable
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from ..core.models import registry
from .threads import FunctionThread, user_message


class ModelDownloads(QObject):
    """Downloads registry models one after the other on a :class:`FunctionThread`. Its signals are
    emitted on the worker and delivered queued on the GUI thread; ``finished`` comes after the
    thread has ended."""

    progress = Signal(str, int, object)     # model name, done bytes, total bytes or None
    finished = Signal(str)                  # "" or the error message
    _ended = Signal(str)                    # worker -> GUI thread, before ``finished``

    def __init__(self, parent: QObject, thread_name: str):
        super().__init__(parent)
        self._thread_name = thread_name
        self._thread: FunctionThread | None = None
        self._cancel = threading.Event()
        self._ended.connect(self._on_ended)

    def running(self) -> bool:
        return self._thread is not None

    def start(self, specs: list[registry.ModelSpec], download_fn=None) -> bool:
        """Download ``specs`` (``download_fn`` defaults to the real download, with checksum);
        False when a download is already running."""
        from ..core.models.download import download

        if self._thread is not None:
            return False
        fn, specs, cancel = download_fn or download, list(specs), threading.Event()
        self._cancel = cancel
        last = [None]

        def progress(name: str, done: int, total: int | None) -> None:
            step = (name, int(done * 1000 / total) if total else done >> 20)   # per mille or per MiB
            if step != last[0]:
                last[0] = step
                self.progress.emit(name, done, total)

        def work() -> None:
            try:
                for spec in specs:
                    fn(spec, progress=lambda done, total, n=spec.name: progress(n, done, total), cancel=cancel)
                self._ended.emit("")
            except Exception as exc:  # noqa: BLE001 - shown to the user, never raised in the GUI
                self._ended.emit(user_message(exc))

        self._thread = FunctionThread(work, self._thread_name, self)
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop at the next chunk (the partial file is kept: downloading again resumes it)."""
        self._cancel.set()

    def stop(self, timeout_ms: int = 10000) -> None:
        """Cancel and join the thread (the dialog is closing)."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.wait(timeout_ms)
            self._thread = None

    def _on_ended(self, error: str) -> None:
        if self._thread is not None:
            self._thread.wait()
            self._thread = None
        self.finished.emit(error)
