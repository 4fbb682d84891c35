"""Helpers shared by the tools that drive the real app under Xvfb (screenshot.py,
record_review.py): re-run under ``xvfb-run`` when there is no display, start the app on a copy of
a folder with tiny RANDOM-weight test models and private settings, wait on the app's state, grab
the screen around the window (menus and dialogs included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def ensure_display(size: str) -> int | None:
    """None when a display is there (or was set up); else the exit status of this script re-run
    under ``xvfb-run`` (the caller returns it)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
        return None
    if shutil.which("xvfb-run") is None:
        print("no display and no xvfb-run: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 "
              "libxcb-cursor0", file=sys.stderr)
        return 2
    w, h = (int(v) for v in size.split("x"))
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {w + 80}x{h + 80}x24", sys.executable, *sys.argv]
    return subprocess.call(cmd)


def start_app(folder: Path, work: Path, size: str):
    """(QApplication, MainWindow) on ``folder`` with tiny test models, settings under ``work``."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from zsas_gui.app import build_parser, launch
    from zsas_gui.core.models.testmodels import make_test_models

    clip_dir, sam_dir = make_test_models(work / "models")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("zsas-gui")
    window = launch(build_parser().parse_args(
        [str(folder), "--clip", str(clip_dir), "--sam", str(sam_dir), "--device", "cpu"]))
    w, h = (int(v) for v in size.split("x"))
    window.resize(w, h)
    window.move(20, 20)
    return app, window


def wait_until(app, done, timeout: float, what: str) -> None:
    """Process events until ``done()``; RuntimeError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app, window, timeout: float, quiet_s: float = 1.0) -> None:
    """Wait until the lane has stayed idle for ``quiet_s`` (the next images are encoded ahead)."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        app.processEvents()
        doc = window.controller.doc
        busy = window.lane.busy or (doc is not None and doc.needs_refine)
        quiet_since = None if busy else (quiet_since or time.monotonic())
        if quiet_since is not None and time.monotonic() - quiet_since > quiet_s:
            return
        time.sleep(0.02)


def pump(app, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def grab(window, widget=None):
    """The screen around ``window`` (popup menus and dialogs over it included), as a QPixmap;
    ``widget``: just that widget's area instead."""
    target = widget or window
    geo = target.frameGeometry()
    return window.screen().grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height())
