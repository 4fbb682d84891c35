"""Waiting made visible: an overlay on the canvas while the models load ("Loading the models …
12 s"), while an image is encoded for the first time (no heatmap yet) and while the heatmap is
recomputed for new text prompts, with the elapsed time and the stage where known; and a permanent status-bar badge while test (random-weight) models
are loaded, whose results mean nothing."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel

TICK_MS = 500


class WaitingIndicator(QObject):
    """Owns the window's canvas overlay for "info" messages (the unreadable-image message, kind
    "error", is document_view's) and the test-model badge."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.overlay = window.canvas_overlay
        self.badge = QLabel("TEST MODELS: random weights, results are meaningless")
        self.badge.setObjectName("test_model_badge")
        self.badge.setStyleSheet("background:#b3261e;color:white;font-weight:bold;padding:1px 6px;")
        self.badge.setToolTip("Tiny random-weight models (zsas models make-test-models) are loaded: they "
                              "exercise the app, not the method. Load real models with File → Models…")
        self.badge.setVisible(False)
        window.statusBar().addPermanentWidget(self.badge)
        self._what = ""                  # "models" or "encode" while something is awaited
        self._text = ""
        self._progress: tuple[int, int] | None = None
        self._since = 0.0
        self._timer = QTimer(self, interval=TICK_MS)
        self._timer.timeout.connect(self._show)
        window.lane.models_loaded.connect(self._models_loaded)
        window.lane.models_failed.connect(lambda _msg: self._done("models"))
        window.controller.progress.connect(self._progress_changed)
        window.controller.document_shown.connect(self._document_shown)
        window.controller.heatmap_changed.connect(lambda s: s is not None and self._done("text"))
        window.text_box.text_prompts_changed.connect(self._text_prompts_changed)

    @property
    def waiting_for(self) -> str:
        return self._what

    def models_loading(self, clip: str | None, sam: str | None) -> None:
        self._start("models", f"Loading the models: CLIP {clip or 'default'}, SAM {sam or 'default'}…", (0, 0))

    def _models_loaded(self, info: dict) -> None:
        self.badge.setVisible(bool(info.get("random")))
        self._done("models")

    def _text_prompts_changed(self, prompts) -> None:
        c = self.window.controller
        if c.doc is not None and c.models_state.loaded and not self._what:
            self._start("text", f"Recomputing the heatmap for the object \"{prompts.object_name}\" and its "
                        "states…", (0, 0))

    def _progress_changed(self, text: str, step: int, total: int) -> None:
        if self._what == "models":
            return
        c = self.window.controller
        if text.startswith("encoding") and c.doc is not None and c.heatmap is None:
            self._start("encode", f"Encoding {c.doc.image_id} for the first time ({text})…", (0, 0))
        elif self._what == "encode" and text:
            self._progress = (step, total)
            self._show()
        elif not text:                   # the lane is idle
            self._done("encode")
            self._done("text")

    def _document_shown(self) -> None:
        if self._what == "encode" and self.window.controller.heatmap is not None:
            self._done("encode")

    def _start(self, what: str, text: str, progress: tuple[int, int] | None) -> None:
        if self._what != what:
            self._since = time.monotonic()
        self._what, self._text, self._progress = what, text, progress
        self._timer.start()
        self._show()

    def _done(self, what: str) -> None:
        if self._what == what:
            self._what = ""
            self._timer.stop()
            self.overlay.clear("info")

    def _show(self) -> None:
        if not self._what or self.overlay.kind == "error":
            return
        elapsed = time.monotonic() - self._since
        self.overlay.show_message(f"{self._text}  {elapsed:.0f} s", "info", self._progress)


def install(window) -> WaitingIndicator:
    return WaitingIndicator(window)
