"""The main window: composes the canvas, panels, lane and controller, and wires the actions.

It computes nothing: gestures go to the :class:`Controller`, state comes back through its signals.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QScrollArea,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import ZsasError
from . import (
    defaults_hint,
    document_view,
    folder_map_panel,
    ground_truth,
    loading_overlay,
    method_panel,
    recent,
    review_progress,
)
from .canvas import ImageCanvas
from .canvas_overlay import CanvasOverlay
from .compat import guard_none_refcount
from .controller import Controller
from .export_dialog import open_export_dialog
from .lane import InferenceLane
from .panels import FileList, ReviewBox, StatusWidgets
from .params_panel import ParamsPanel, TextPromptsBox
from .precompute import PrecomputeControls, make_disk_cache
from .recovery import OutOfMemoryControls
from .settings import app_settings, restore_window_layout, save_window_layout
from .shortcuts import ACTIONS, MENUS, HelpDialog, make_actions
from .threads import freeze_heap, preload_gil_heavy_modules
from .value_guard import guard_values
from .view_panel import LayersBox, ToolsBox

if TYPE_CHECKING:
    from .model_dialog import ModelDialog

log = logging.getLogger(__name__)

MEMORY_POLL_MS = 2000
class MainWindow(QMainWindow):
    def __init__(self, lane: InferenceLane | None = None, parent: QWidget | None = None):
        guard_none_refcount()       # before the first widget update (see compat.py)
        preload_gil_heavy_modules()  # not on the lane while the window is visible (threads.py)
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setWindowTitle("zsas-gui")
        self.setAcceptDrops(True)
        self.lane = lane or InferenceLane(disk_cache=make_disk_cache())
        self.lane.setParent(self)
        self.controller = Controller(self.lane, self)
        self.canvas = ImageCanvas()
        self.canvas_overlay = CanvasOverlay(self.canvas.viewport())
        self.actions = make_actions(self, self._handlers())
        self._build_ui()
        self.precompute = PrecomputeControls(self)
        self.precompute.install(self.menuBar().actions()[0].menu(), self.findChild(QToolBar, "main_toolbar"),
                                before=self.actions["quit"])
        recent.install(self, self.menuBar().actions()[0].menu(), before=self.actions["export"])
        self.oom = OutOfMemoryControls(self)    # a model out of memory: offers the CPU or a smaller model
        self._wire()
        guard_values(self)          # value widgets take the wheel only when focused; undo is window-wide
        self._no_models_dialog = None          # first_run.ModelsNeededDialog
        self._model_dialog = None
        self._device_text = "no models"
        self._mem_timer = QTimer(self, interval=MEMORY_POLL_MS)
        self._mem_timer.timeout.connect(self._update_device_label)
        self._mem_timer.start()
        restore_window_layout(self, self.layers_box.colormap)
        freeze_heap("window")       # libraries and widgets: out of the collector's way (lane.py)

    # -- construction -----------------------------------------------------------------------------
    def _handlers(self) -> dict:
        c = self.controller
        return {
            "open_folder": self.choose_folder, "export": lambda: open_export_dialog(self),
            "models": self.show_model_dialog, "quit": self.close,
            "undo": c.undo, "redo": c.redo, "delete_point": lambda: c.remove_point(self.canvas.hovered_point()),
            "regenerate": c.regenerate, "clear_points": c.clear_points, "cancel": c.cancel,
            "tool_points": lambda on: on and self.set_tool("points"),
            "tool_brush": lambda on: on and self.set_tool("brush"),
            "tool_eraser": lambda on: on and self.set_tool("eraser"),
            "brush_bigger": lambda: self.tools_box.step_brush(1.25),
            "brush_smaller": lambda: self.tools_box.step_brush(0.8),
            "fill_holes": c.fill_holes, "clear_mask": c.clear_mask,
            "fit": self.canvas.fit, "actual_size": self.canvas.actual_size,
            "zoom_in": lambda: self.canvas.zoom_by(1.25), "zoom_out": lambda: self.canvas.zoom_by(0.8),
            "toggle_heatmap": lambda on: self.canvas.set_layer_visible("heatmap", on),
            "toggle_contour": lambda on: self.canvas.set_layer_visible("contour", on),
            "toggle_mask": lambda on: self.canvas.set_layer_visible("mask", on),
            "toggle_points": lambda on: self.canvas.set_layer_visible("points", on),
            "toggle_split": None,
            "toggle_method": lambda on: (self.method_panel.setVisible(on), self.layout().activate(), self.canvas.fit()),
            "toggle_gt": lambda on: self.canvas.set_layer_visible("gt", on),
            "accept": lambda: review_progress.review(self, "accept"),
            "reject": lambda: review_progress.review(self, "reject"),
            "mark_good": lambda: review_progress.review(self, "mark_good"),
            "auto_advance": review_progress.set_auto_advance,
            "defect_class": lambda: self.review_box.focus_class(),
            "next_image": lambda: self._go(self.file_list.neighbour(1)),
            "prev_image": lambda: self._go(self.file_list.neighbour(-1)),
            "next_unreviewed": self.next_unreviewed, "help": self.show_help,
        }

    def _build_ui(self) -> None:
        a = self.actions
        for key in ("toggle_heatmap", "toggle_contour", "toggle_mask", "toggle_points"):
            a[key].setChecked(True)
        a["tool_points"].setChecked(True)
        bar = self.menuBar()
        for menu_name in MENUS:
            menu = bar.addMenu(f"&{menu_name}")
            for spec in ACTIONS:
                if spec.menu == menu_name:
                    menu.addAction(a[spec.id])
        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        for key in ("open_folder", "export", "models", None, "undo", "redo", None, "tool_points", "tool_brush",
                    "tool_eraser", None, "regenerate", "cancel", None, "fit", None, "accept", "reject",
                    "mark_good", "prev_image", "next_image", "next_unreviewed"):
            tb.addSeparator() if key is None else tb.addAction(a[key])

        centre = QWidget()
        lay = QVBoxLayout(centre)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.banner = QLabel("")
        self.banner.setObjectName("error_banner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#6b1f1f;color:white;padding:6px;")
        self.banner.setVisible(False)
        self.banner.mousePressEvent = lambda _e: self.banner.setVisible(False)
        lay.addWidget(self.banner)
        lay.addWidget(self.canvas, 1)
        self.setCentralWidget(centre)

        self.file_list = FileList()
        files_dock = QDockWidget("Images", self)
        files_dock.setObjectName("files_dock")
        files_dock.setWidget(self.file_list)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, files_dock)

        side = QWidget()
        side_lay = QVBoxLayout(side)
        self.tools_box = ToolsBox(self.canvas, a)
        self.layers_box = LayersBox(self.canvas, a)
        self.params_panel = ParamsPanel()
        self.text_box = TextPromptsBox()
        self.review_box = ReviewBox(a)
        for w in (self.tools_box, self.params_panel, self.layers_box, self.text_box):
            side_lay.addWidget(w)
        side_lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("side_scroll")
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(320)
        side_dock = QDockWidget("Prompts, parameters and review", self)
        side_dock.setObjectName("side_dock")
        pinned = QWidget()                 # the review box stays in view; the rest scrolls
        pinned_lay = QVBoxLayout(pinned)
        pinned_lay.setContentsMargins(0, 0, 0, 0)
        pinned_lay.addWidget(self.review_box)
        pinned_lay.addWidget(scroll, 1)
        side_dock.setWidget(pinned)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, side_dock)

        self.status = StatusWidgets(self.statusBar(), a["cancel"])
        self.method_panel, self.ground_truth = method_panel.install(self), ground_truth.install(self)
        self.review_panel = review_progress.install(self)
        self.defaults_hint = defaults_hint.install(self)
        self.waiting = loading_overlay.install(self)
        self.folder_map = folder_map_panel.install(self)     # "heatmap from" above the parameters

    def _wire(self) -> None:
        c, cv = self.controller, self.canvas
        cv.point_added.connect(c.add_point)
        cv.point_moved.connect(c.move_point)
        cv.point_drag_finished.connect(c.end_drag)
        cv.point_removed.connect(c.remove_point)
        cv.stroke_finished.connect(c.paint)
        cv.zoom_changed.connect(self.status.show_zoom)
        self.file_list.image_chosen.connect(self.open_image)
        self.file_list.header().sortIndicatorChanged.connect(
            lambda *_: QTimer.singleShot(0, lambda: c.set_order(self.file_list.ordered())))
        self.params_panel.params_changed.connect(c.set_params)
        self.params_panel.params_changed.connect(lambda p, _n: cv.set_tau(p.tau))
        self.params_panel.regenerate_requested.connect(c.regenerate)
        self.text_box.text_prompts_changed.connect(c.set_text_prompts)
        self.review_box.defect_class_changed.connect(c.set_defect_class)
        c.document_shown.connect(lambda: document_view.show_document(self))
        c.heatmap_changed.connect(cv.set_heatmap)
        c.progress.connect(self.status.show_progress)
        c.error.connect(self.show_error)
        c.info.connect(lambda m: self.statusBar().showMessage(m, 5000))
        c.image_updated.connect(self.file_list.update_image)
        self.lane.models_loaded.connect(self._on_models_loaded)
        self.lane.models_failed.connect(self._on_models_failed)

    # -- state -> widgets -----------------------------------------------------------------------
    _shown_id: str | None = None
    _loaded_text = "none"

    def show_error(self, message: str) -> None:
        log.warning("%s", message)
        self.banner.setText(message + "   (click to dismiss)")
        self.banner.setVisible(True)
        self.statusBar().showMessage(message.splitlines()[0], 8000)

    def _update_device_label(self) -> None:
        pipe = self.lane.pipeline
        if pipe is None:
            self.status.device.setText(self._device_text)
            return
        from ..core.models.device import describe

        bundle = pipe.sam or pipe.clip
        self.status.device.setText(describe(bundle.device, bundle.dtype))

    # -- user actions ------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = app_settings().value("last_folder", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> bool:
        from ..state.project import Project

        try:
            project = Project.open(folder)
        except ZsasError as exc:
            self.show_error(str(exc))
            return False
        rows = self.controller.open_project(project)
        self.precompute.folder_opened()
        self.folder_map.folder_opened()
        self.file_list.set_images(rows)
        self.controller.set_order(self.file_list.ordered())
        classes = {r.split("/")[-2] for r, _s, _c in rows if "/" in r} - {"good"}
        self.review_box.set_classes(sorted(classes) + ["defect"])
        review_progress.folder_opened(self, project)
        app_settings().setValue("last_folder", str(project.root))
        recent.remember_folder(project.root)
        if not rows:
            self.show_error(f"{project.root}: no images found (png, jpg, bmp, tif, webp)")
            return True
        self.file_list.select(recent.first_image(project.root, self.file_list.ordered()))
        return True

    def open_image(self, rel: str) -> None:
        self.controller.open_image(rel)
        self.file_list.select(rel)

    def _go(self, rel: str | None) -> None:
        if rel is not None:
            self.file_list.select(rel)

    def next_unreviewed(self) -> None:
        rel = self.file_list.next_unreviewed()
        if rel is None:
            self.statusBar().showMessage("every image is reviewed", 5000)
        self._go(rel)

    def set_tool(self, tool: str) -> None:
        for t in ("points", "brush", "eraser"):
            act = self.actions[f"tool_{t}"]
            act.blockSignals(True)
            act.setChecked(t == tool)
            act.blockSignals(False)
        self.canvas.set_tool(tool)

    def show_help(self) -> None:
        dlg = HelpDialog(self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()

    def show_model_dialog(self) -> ModelDialog:
        """Show the model manager (made on first use) and return it."""
        from .model_dialog import ModelDialog

        if self._model_dialog is None:
            self._model_dialog = ModelDialog(self)
            self._model_dialog.models_chosen.connect(self.load_models)
        self._model_dialog.show_loaded(self._loaded_text)
        self._model_dialog.show()
        self._model_dialog.raise_()
        return self._model_dialog

    # -- models --------------------------------------------------------------------------------------
    def load_models(self, clip: str | None, sam: str | None, device: str = "auto", precision: str = "auto") -> None:
        self._device_text = "loading models…"
        self.status.device.setText(self._device_text)
        self.status.progress_label.setText("loading models…")
        s = app_settings()
        for k, v in (("clip", clip), ("sam", sam), ("device", device), ("precision", precision)):
            s.setValue(f"models/{k}", v or "")
        self.waiting.models_loading(clip, sam)
        self.controller.models.load(clip, sam, device, precision)   # the image is sent once they are loaded

    def _on_models_loaded(self, info: dict) -> None:
        c = self.controller               # its models_state follows the same signal (connected first)
        self._device_text = info["describe"]
        self._loaded_text = f"CLIP {info['models']['clip']} + SAM {info['models']['sam']} on {info['describe']}"
        if self._model_dialog is not None:
            self._model_dialog.show_loaded(self._loaded_text)
        self.status.device.setText(self._device_text)
        self.status.progress_label.setText("")
        note = " — RANDOM test weights, results are meaningless" if info.get("random") else ""
        decoder = f" (SAM decoder: {info['decoder']})" if info.get("decoder") else ""
        self.statusBar().showMessage(
            f"models: {info['models']['clip']} + {info['models']['sam']}{decoder}{note}", 8000)
        for w in info.get("warnings", []):
            self.show_error(w)
        if self._no_models_dialog is not None:
            self._no_models_dialog.close()
        c.submit_now(kind=None)

    def _on_models_failed(self, message: str) -> None:
        self._device_text = "no models"
        self.status.device.setText(self._device_text)
        self.status.progress_label.setText("")
        self.show_no_models(message)

    def show_no_models(self, detail: str = "") -> None:
        """The one dialog explaining how to get the models (non-blocking)."""
        from .first_run import models_needed_dialog

        if self._no_models_dialog is None:
            self._no_models_dialog = models_needed_dialog(self)
        if detail:
            self._no_models_dialog.setDetailedText(detail)
        self._no_models_dialog.show()

    # -- drag and drop, settings, closing ------------------------------------------------------------
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        """A folder opens as a project; an image inside the open project is selected, any other
        image opens its folder."""
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile()).resolve()
            if path.is_dir():
                self.open_folder(path)
                return
            proj = self.controller.project
            if path.is_file():
                if proj is None or not path.is_relative_to(proj.root):
                    if not self.open_folder(path.parent):
                        return
                    proj = self.controller.project
                self._go(path.relative_to(proj.root).as_posix())
                return

    def closeEvent(self, event):
        self.controller.flush()
        save_window_layout(self, self.layers_box.colormap)
        self._mem_timer.stop()
        if self._model_dialog is not None:
            self._model_dialog.shutdown()
            self._model_dialog.close()
        if self._no_models_dialog is not None:
            self._no_models_dialog.close()
        for box in (self.oom.box, self.precompute.cache_dialog):
            if box is not None:
                box.close()
        self.hide()                 # the lane may need a moment to reach its next checkpoint
        self.lane.shutdown()
        super().closeEvent(event)
