"""Folder-wide background precompute and the disk cache of features.

**Precompute folder** (File menu, toolbar) runs the encoders (CLIP tokens + map, SAM embedding)
for every image of the open folder on the inference lane at the lowest priority: one image per
job, after model loading, interactive requests and the prefetch of the next images; a request
that arrives while an image is being encoded stops it at its next checkpoint (between the two
encoders) and the image is encoded again afterwards (its CLIP part comes from the caches). The
status bar shows ``precompute n/N`` with a cancel button.

The features go to the pipeline's memory cache and to a :class:`~zsas_gui.core.engine.cache.DiskCache`
(default ``<user cache>/zsas-gui/features``, size-bounded, safe to delete; **File → Feature
cache…** sets its size, clears it, and turns on precomputing every opened folder
automatically), so a restart does not encode them again. While there is room in the lane's
ahead cache (ahead.py), each image's automatic result is computed and kept too, so moving to it
shows the heatmap, points and mask at once.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.types import MethodParams, TextPrompts
from .lane_jobs import AheadItem
from .settings import app_settings

if TYPE_CHECKING:
    from .lane import InferenceLane

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "ZSAS_FEATURE_CACHE"
DEFAULT_CACHE_GB = 4


# -- the disk cache ----------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$ZSAS_FEATURE_CACHE``, else ``<platform user cache>/zsas-gui/features``."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    import platformdirs

    return platformdirs.user_cache_path("zsas-gui") / "features"


def cache_folder() -> Path:
    return Path(str(app_settings().value("cache/folder") or default_cache_dir()))


def cache_max_gb() -> int:
    try:
        return max(1, int(app_settings().value("cache/max_gb", DEFAULT_CACHE_GB)))
    except (TypeError, ValueError):
        return DEFAULT_CACHE_GB


def auto_precompute() -> bool:
    return str(app_settings().value("cache/auto_precompute", "false")).lower() in ("true", "1")


def make_disk_cache():
    """The app's feature cache from the settings (folder, size)."""
    from ..core.engine.cache import DiskCache

    return DiskCache(cache_folder(), cache_max_gb() << 30)


# -- GUI side ---------------------------------------------------------------------------------------
class PrecomputeControls(QObject):
    """The "Precompute folder" and "Feature cache…" actions and the status bar progress of a
    window (``window.lane``, ``window.controller``, ``window.statusBar()``)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.lane = window.lane
        self.action = QAction("Pre&compute folder", window)
        self.action.setObjectName("precompute_folder")
        self.action.setToolTip("Encode every image of the folder in the background (lowest priority), "
                               "so each one opens at once; kept on disk across restarts")
        self.action.triggered.connect(self.start)
        self.cache_action = QAction("Feature c&ache…", window)
        self.cache_action.setObjectName("feature_cache")
        self.cache_action.triggered.connect(self.show_cache_dialog)
        bar = window.statusBar()
        self.label = QLabel("")
        self.label.setObjectName("precompute_label")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(100)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("✕")
        self.cancel_button.setObjectName("precompute_cancel")
        self.cancel_button.setToolTip("Stop precomputing (what is done stays cached)")
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.label, self.bar, self.cancel_button):
            bar.addPermanentWidget(w)
            w.setVisible(False)
        self.lane.precompute_progress.connect(self._on_progress)
        self.lane.precompute_finished.connect(self._on_finished)
        self._dialog: CacheDialog | None = None

    def install(self, file_menu, toolbar=None, before=None) -> None:
        file_menu.insertAction(before, self.action)
        file_menu.insertAction(before, self.cache_action)
        if toolbar is not None:
            toolbar.addAction(self.action)

    def start(self) -> bool:
        """Precompute every image of the open folder; False (and says why) when it cannot."""
        c = self.window.controller
        if c.project is None or not c.project.images:
            self.window.statusBar().showMessage("open a folder of images first", 5000)
            return False
        if not c.can_compute:
            self.window.show_error("precompute needs the models: open Models… to load them")
            return False
        params, text = c.project_defaults.value if c.project_defaults.value else (MethodParams(), TextPrompts())
        items = [AheadItem(e.rel, str(e.path), text, params) for e in c.project.images]
        self.lane.precompute(items)
        self._on_progress(0, len(items), "")
        return True

    def cancel(self) -> None:
        self.lane.cancel_precompute()

    def folder_opened(self) -> None:
        """A new folder: stop the old precompute; start one if the setting says so."""
        self.cancel()
        if auto_precompute() and self.window.controller.can_compute:
            self.start()

    def _on_progress(self, done: int, total: int, _rel: str) -> None:
        self.label.setText(f"precompute {done}/{total}")
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(done)
        for w in (self.label, self.bar, self.cancel_button):
            w.setVisible(True)

    def _on_finished(self, done: int, total: int, cancelled: bool) -> None:
        for w in (self.label, self.bar, self.cancel_button):
            w.setVisible(False)
        what = "cancelled" if cancelled else "done"
        self.window.statusBar().showMessage(f"precompute {what}: {done}/{total} images encoded", 5000)

    @property
    def cache_dialog(self) -> CacheDialog | None:
        """The feature cache dialog, once shown."""
        return self._dialog

    def show_cache_dialog(self) -> None:
        if self._dialog is None:
            self._dialog = CacheDialog(self.lane, self.window)
        self._dialog.refresh()
        self._dialog.show()
        self._dialog.raise_()


class CacheDialog(QDialog):
    """Where the feature cache is, how big it is and may grow, clear it, auto-precompute."""

    def __init__(self, lane: InferenceLane, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("cache_dialog")
        self.setWindowTitle("Feature cache")
        self.lane = lane
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("CLIP tokens, folder-map features and SAM embeddings of the images you opened or precomputed, "
                             "kept on disk so they are not encoded again. Safe to delete at any time."))
        form = QFormLayout()
        self.folder = QLabel("")
        self.folder.setWordWrap(True)
        self.used = QLabel("")
        self.max_gb = QSpinBox()
        self.max_gb.setRange(1, 1000)
        self.max_gb.setSuffix(" GB")
        self.max_gb.setValue(cache_max_gb())
        self.max_gb.valueChanged.connect(self._set_max)
        self.auto = QCheckBox("precompute every folder I open (lowest priority)")
        self.auto.setChecked(auto_precompute())
        self.auto.toggled.connect(lambda on: app_settings().setValue("cache/auto_precompute", bool(on)))
        form.addRow("folder", self.folder)
        form.addRow("in use", self.used)
        form.addRow("at most", self.max_gb)
        form.addRow("", self.auto)
        lay.addLayout(form)
        row = QHBoxLayout()
        clear = QPushButton("Clear cache")
        clear.setObjectName("clear_cache")
        clear.clicked.connect(self.clear)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        row.addWidget(clear)
        row.addStretch(1)
        row.addWidget(close)
        lay.addLayout(row)

    @property
    def cache(self):
        return self.lane.disk_cache or getattr(self.lane.pipeline, "disk_cache", None)

    def refresh(self) -> None:
        cache = self.cache
        folder = cache.folder if cache is not None else cache_folder()
        self.folder.setText(str(folder) + ("" if cache is not None else " (not in use)"))
        used = cache.nbytes if cache is not None and folder.is_dir() else 0
        self.used.setText(f"{used / 2**20:.1f} MB")

    def _set_max(self, gb: int) -> None:
        app_settings().setValue("cache/max_gb", int(gb))
        if self.cache is not None:
            self.cache.max_bytes = int(gb) << 30   # an int: read by the worker at its next save

    def clear(self) -> None:
        """Delete the cache files (a file being written meanwhile is simply written again)."""
        cache = self.cache
        if cache is not None and cache.folder.is_dir():
            for sub in cache.folder.iterdir():
                if sub.is_dir() and len(sub.name) == 2:
                    shutil.rmtree(sub, ignore_errors=True)
        self.refresh()
