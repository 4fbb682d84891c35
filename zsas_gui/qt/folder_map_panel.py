"""The "heatmap from" selector (side panel): the text prompts, this folder (the ``mutual`` map),
the good images (``references``) or ``auto`` (references when there are good images, else the
folder for 3+ images, else the text), ALGORITHM.md §1b, docs/app.md.

The choice is a project default (project.json, beside the parameters). A folder map is built by
a pass on the lane (folder_map_job.py) with its progress and a cancel button here; the map in
use is named below the choice, and stays what it was until a pass finishes (a cancelled or
failed pass says so). Marking an image good (or taking the mark back) while the references map
is in use (or ``auto`` turns to it) fits it again on the new set of good images; when a map is
installed, the current image's map and automatic result are computed again (images computed
ahead are keyed by the map's state, ahead.py), and the file list shows every image's score on it.
Below the choice, the folder maps' options (folder_map_options.py: the backbone and the τ mode),
project defaults too: a new backbone builds the map again; a new τ mode re-scales the map in use
(the gate mode also sets the gate parameter, as the params panel would).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import ZsasError
from ..core.explain.explain import map_source
from ..core.export.common import in_good_folder
from ..core.maps.folder_select import MAP_KINDS, resolve_map_kind
from ..state.project_defaults import MapOptions
from .folder_map_job import FolderMapSignals, FolderPass, MapperStore
from .folder_map_options import MapOptionsForm, registry_knows
from .map_scores import forget_scores, refresh_current, show_scores

log = logging.getLogger(__name__)

STAGE_TEXT = {"features": "encoding", "scoring": "scoring", "ranking": "ranking"}


def choice_text(kind: str, n_folder: int, n_good: int) -> str:
    """The selector's item for ``kind`` with the number of images it draws on."""
    if kind == "mutual":
        return f"this folder ({n_folder} images)"
    if kind == "references":
        return f"good images ({n_good})"
    if kind == "auto":
        try:
            concrete = resolve_map_kind("auto", n_good, n_folder)
        except ZsasError:
            concrete = "text"
        return f"auto: {choice_text(concrete, n_folder, n_good)}"
    return "text prompts"


class HeatmapSourceBox(QGroupBox):
    """The selector, the map in use, and the pass's progress with its cancel button."""

    chosen = Signal(str)            # the user picked a kind (MAP_KINDS)
    rebuild = Signal()              # build the chosen map again
    cancel = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Heatmap from", parent)
        self.setObjectName("heatmap_source_box")
        lay = QVBoxLayout(self)
        self.combo = QComboBox()
        self.combo.setObjectName("map_source")
        self.combo.setToolTip("Where the heatmap comes from: CLIP text prompts; each image against the "
                              "other images of this folder; against the images marked good; or auto "
                              "(good images if any, else this folder)")
        for kind in MAP_KINDS:
            self.combo.addItem(choice_text(kind, 0, 0), kind)
        self.combo.currentIndexChanged.connect(lambda i: self.chosen.emit(self.combo.itemData(i)))
        lay.addWidget(self.combo)
        self.options = MapOptionsForm()
        lay.addWidget(self.options)
        self.in_use = QLabel("")
        self.in_use.setObjectName("map_in_use")
        self.in_use.setWordWrap(True)
        lay.addWidget(self.in_use)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setObjectName("map_progress")
        self.progress.setFormat("%v/%m")
        self.stop = QToolButton()
        self.stop.setObjectName("map_cancel")
        self.stop.setText("✕")
        self.stop.setToolTip("Stop building this map (the heatmap stays as it is)")
        self.stop.clicked.connect(self.cancel)
        self.again = QPushButton("Build again")
        self.again.setObjectName("map_rebuild")
        self.again.clicked.connect(self.rebuild)
        for w in (self.progress, self.stop, self.again):
            row.addWidget(w)
            w.setVisible(False)
        lay.addLayout(row)

    def show_choice(self, kind: str, n_folder: int, n_good: int) -> None:
        """Select ``kind`` (no ``chosen`` signal) and write the counts into the items."""
        self.combo.blockSignals(True)
        for i in range(self.combo.count()):
            self.combo.setItemText(i, choice_text(self.combo.itemData(i), n_folder, n_good))
        self.combo.setCurrentIndex(max(0, self.combo.findData(kind)))
        self.combo.blockSignals(False)

    def show_progress(self, stage: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"{STAGE_TEXT.get(stage, stage)} %v/%m")
        for w, on in ((self.progress, True), (self.stop, True), (self.again, False)):
            w.setVisible(on)

    def show_in_use(self, text: str, offer_rebuild: bool = False) -> None:
        self.in_use.setText(text)
        for w, on in ((self.progress, False), (self.stop, False), (self.again, offer_rebuild)):
            w.setVisible(on)


class FolderMapControls(QObject):
    """The selector's behaviour in ``window`` (its controller, lane and side panel)."""

    def __init__(self, window):
        super().__init__(window)
        self.window, self.controller, self.lane = window, window.controller, window.lane
        self.box = HeatmapSourceBox()
        self.signals = FolderMapSignals(self)
        self.store = MapperStore()
        self.kind = "text"                   # the user's choice
        self.options = MapOptions()          # its backbone and τ mode
        self.info: dict | None = None        # the installed map's info (None: the models' text map)
        self.job: FolderPass | None = None   # the pass under way
        self._serial = 0
        self._good: set[str] = set()
        self._scored: set[str] = set()       # images whose listed score is the folder map's
        self._note = ""
        self._retry = False                  # the last pass was cancelled or failed
        self.box.chosen.connect(self.choose)
        self.box.rebuild.connect(self.apply)
        self.box.cancel.connect(self.cancel)
        self.signals.progress.connect(self._on_progress)
        self.signals.scored.connect(self._on_scored)
        self.box.options.changed.connect(self._options_changed)
        self.signals.finished.connect(self._on_finished)
        self.lane.models_loaded.connect(self._on_models_loaded)
        self.controller.image_updated.connect(self._on_image_updated)
        self._show()

    # -- counts ------------------------------------------------------------------------------
    def folder_paths(self) -> list[str]:
        project = self.controller.project
        return [] if project is None else [str(e.path) for e in project.images]

    def good_paths(self) -> list[str]:
        project = self.controller.project
        return [] if project is None else [str(project.entry(r).path) for r in sorted(self._good)]

    def _good_now(self) -> set[str]:
        """Images marked good, and those in a ``train/good``-like folder (MVTec's references)."""
        c = self.controller
        if c.project is None:
            return set()
        return {e.rel for e in c.project.images if c.docs.status(e.rel) == "good" or in_good_folder(e.rel)}

    def concrete(self) -> str:
        """The source the choice means now (a user error when it cannot work)."""
        return resolve_map_kind(self.kind, len(self._good), len(self.folder_paths()))

    # -- gestures ----------------------------------------------------------------------------
    def folder_opened(self) -> None:
        """A folder was opened: its stored choice, its good images; build its map."""
        from ..state.project_defaults import load_map_options, load_map_source

        self.kind = load_map_source(self.controller.project)
        self.options = load_map_options(self.controller.project)
        self.box.options.show_options(self.options)
        self._good = self._good_now()
        self.apply()

    def choose(self, kind: str) -> None:
        """The user picked ``kind``: store it in the project and build it."""
        from ..state.project_defaults import save_map_source

        self.kind = kind
        project = self.controller.project
        if project is not None:
            try:
                save_map_source(project, kind)
            except (OSError, ZsasError) as exc:
                self.window.show_error(f"could not save the heatmap source in {project.store.project_file}: {exc}")
        if self.options.tau_mode == "gate":            # the gate reads a folder map's score only
            self._set_gate(None if kind == "text" else 0.5)
        self.apply()

    def apply(self) -> None:
        """Start the pass the choice needs (nothing when that map is in use or no models)."""
        self._note, self._retry = "", False
        if self.controller.project is None or not self.lane.has_pipeline:
            self._show()
            return
        try:
            kind = self.concrete()
        except ZsasError as exc:
            self._stop_job()
            self._note = f"{exc} — the heatmap stays as it is"
            self._show()
            return
        paths = {"mutual": self.folder_paths, "references": self.good_paths}.get(kind, list)()
        if kind == "text" and self.info is None:
            self._stop_job()
            self._show()
            return
        o = self.options
        if kind != "text" and o.backbone != "clip" and not o.weights and not registry_knows(o.backbone[5:]):
            self._stop_job()
            self._note = (f"choose the weights file of {self.options.backbone} (a timm state dict, "
                          ".safetensors or .pth) — the heatmap stays as it is")
            self._show()
            return
        self._start(kind, paths)
        if kind != "text":
            self.box.show_progress("features", 0, len(paths))

    def _start(self, kind: str, paths: list[str]) -> None:
        self._stop_job()
        self._serial += 1
        names = {str(e.path): e.rel for e in self.controller.project.images}
        self.job = FolderPass(self._serial, kind, paths, self.signals, self.store, names=names,
                              backbone=self.options.backbone, weights=self.options.weights,
                              absolute=self.options.absolute)
        self.lane.run_folder_pass(self.job)
        self._show()

    def _options_changed(self, options: MapOptions, what: str) -> None:
        """The user changed the backbone (build the map again) or the τ mode (re-scale it)."""
        from ..state.project_defaults import save_map_options

        old, self.options = self.options, options
        project = self.controller.project
        if project is None:
            return
        try:
            save_map_options(project, options)
        except (OSError, ZsasError) as exc:
            self.window.show_error(f"could not save the heatmap options in {project.store.project_file}: {exc}")
        if what == "backbone":
            self.apply()
            return
        if (old.tau_mode == "gate") != (options.tau_mode == "gate"):
            self._set_gate(0.5 if options.tau_mode == "gate" else None)
        if self.job is not None:
            self.job.absolute = options.absolute           # the pass under way installs with it
        elif self.info is not None and self.lane.has_pipeline:
            self._note, self._retry = "", False
            self._start("rescale", [])

    def _set_gate(self, gate: float | None) -> None:
        """The gate mode's gate (0.5: the calibration images' level) as a parameter edit of the
        current image and the project's defaults: set when the gate is off, taken back (None) only
        while it is still at 0.5 (a gate the user moved stays)."""
        c = self.controller
        params = c.doc.state.params if c.doc is not None else (c.project_defaults.value or (None,))[0]
        if params is None or params.gate != (0.5 if gate is None else None):
            return
        if c.doc is not None:
            c.set_params(params.replace(gate=gate), "gate")
        else:
            c.project_defaults.remember(params.replace(gate=gate), c.project_defaults.value[1])

    def cancel(self) -> None:
        """Stop the pass under way: the map in use stays."""
        job = self.job
        if job is None:
            return
        job.cancel()                        # before the lane stops it: it must not resume
        for dropped in self.lane.cancel_folder_pass():
            dropped.abandon()               # it was waiting: say it ended

    def _stop_job(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.lane.cancel_folder_pass()
            self.job = None

    # -- lane -------------------------------------------------------------------------------
    def _on_progress(self, serial: int, stage: str, done: int, total: int) -> None:
        if self.job is not None and serial == self.job.serial:
            self.box.show_progress(stage, done, total)

    def _on_scored(self, serial: int, scores: dict) -> None:
        """A pass installs its map: every image's score on it, in the list and open documents."""
        if self.job is not None and serial == self.job.serial:
            show_scores(self.controller, scores)
            self._scored = set(scores)

    def _on_finished(self, serial: int, info, message: str) -> None:
        if self.job is None or serial != self.job.serial:
            return                          # a pass replaced meanwhile
        kind, self.job = self.job.kind, None
        if info is not None:
            self.info = info if info.get("mapper") in ("mutual", "references") else None
            left_out = info.get("left_out") or []
            self._note = (f"{len(left_out)} unreadable image(s) left out: "
                          f"{', '.join(Path(p).name for p in left_out[:3])}" if left_out else "")
            if self.info is None:           # back to the text map: its scores come as images are computed
                forget_scores(self.controller, self.window.file_list, self._scored)
                self._scored = set()
            self._show()
            refresh_current(self.controller)
            return
        what = "cancelled" if message == "cancelled" else f"failed: {message}"
        self._note, self._retry = f"building the map {what} — the heatmap stays as it was", True
        if message != "cancelled":
            self.window.show_error(f"heatmap from {choice_text(kind, 0, 0).split(' (')[0]}: {message}")
        self._show()

    def _on_models_loaded(self, _info) -> None:
        self._stop_job()
        self.info = None                    # new models start from their text map
        forget_scores(self.controller, self.window.file_list, self._scored)
        self._scored = set()
        if self.controller.project is not None:
            self.apply()

    def _on_image_updated(self, rel: str, status: str, _score) -> None:
        good = status == "good" or in_good_folder(rel)
        if good == (rel in self._good):
            return
        (self._good.add if good else self._good.discard)(rel)
        uses_references = (self.info or {}).get("mapper") == "references" or (
            self.job is not None and self.job.kind == "references")
        try:
            wanted = self.concrete()
        except ZsasError:
            wanted = None
        if uses_references or wanted == "references":
            self.apply()                    # the references grew (or shrank): fit them again
        else:
            self._show()

    # -- showing ----------------------------------------------------------------------------
    def in_use_text(self) -> str:
        pipe = self.lane.pipeline
        if self.info is not None:
            scale = ", τ on the folder scale" if self.info.get("absolute_scale") else ""
            scale += " + gate at the calibration level" if self.options.tau_mode == "gate" else ""
            return map_source(self.info) + scale
        if pipe is None:
            return "no models loaded"
        return map_source({"mapper": "vv", "model_id": pipe.clip.model_id if pipe.clip else "CLIP"})

    def _show(self) -> None:
        n_folder = len(self.folder_paths())
        self.box.show_choice(self.kind, n_folder, len(self._good))
        self.box.options.set_folder_map(self.kind != "text")
        text = f"in use: {self.in_use_text()}"
        if self._note:
            text += f"\n{self._note}"
        if self.job is None:
            self.box.show_in_use(text, offer_rebuild=self._retry and self.controller.project is not None)
        else:
            self.box.in_use.setText(text)


def install(window) -> FolderMapControls:
    """Put the selector at the top of ``window``'s side panel (above the parameters)."""
    controls = FolderMapControls(window)
    side = window.params_panel.parentWidget().layout()
    side.insertWidget(side.indexOf(window.params_panel), controls.box)
    return controls
