"""The method panel: the eight steps of the current image's last refinement, as a strip of
thumbnails (heatmap → region → ring → similarity → points → stage 1 → stage 2 → stage 3), under
a line naming the heatmap's source (text prompts, this folder over N images, or N good images,
with the backbone; from the result's provenance).

Nothing is recomputed: the :class:`~zsas_gui.core.explain.explain.Explanation` is built from what the
inference lane already produced for the request whose result the document shows (its PPGResult,
sent by the controller's ``ppg_shown`` just before ``result_shown``, and the SegmentationResult with the
cascade's own StageResult objects). Rendering is numpy/OpenCV on the GUI thread: the thumbnails
from a downscaled copy of the image, the selected step at full size (cached per result).

Click a thumbnail, or Left/Right while the strip has focus, to show that step on the canvas (an
overlay over the normal layers, with a one-line caption); Esc or "Off" returns to the normal view.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.explain.explain import STEP_NAMES, Step, explanation_from, map_source, render_step
from ..core.types import Prompts
from .convert import rgb_to_qimage

#: Long side of a thumbnail in pixels.
THUMB_SIDE = 112
#: Long side of the quick rendering shown while results stream in (edits, drags); the full-size
#: one replaces it after SHARPEN_MS without a newer result.
LIVE_SIDE = 512
SHARPEN_MS = 300
#: PPG results kept while waiting for their refinement's result (by request serial).
_PPG_KEEP = 4


def downscale(image: np.ndarray, side: int = THUMB_SIDE) -> tuple[np.ndarray, float]:
    """(H, W, 3) uint8 RGB -> (h, w, 3) uint8 with max(h, w) <= ``side``, and the factor h / H."""
    import cv2

    h, w = image.shape[:2]
    f = min(1.0, side / max(h, w))
    if f == 1.0:
        return image, 1.0
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), f


def scaled_step(step: Step, hw: tuple[int, int]) -> Step:
    """``step`` with its arrays resized to ``hw`` ((h, w) of the downscaled image): float maps
    by area averaging, bool masks by nearest neighbour, points ((N, 2) (x, y) image pixels) and
    stage-3 boxes (xyxy) scaled; the full-size arrays are not modified."""
    import cv2

    h, w = hw
    size = (w, h)
    out = {}
    for key, v in step.data.items():
        if isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype == bool:
            out[key] = cv2.resize(v.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        elif isinstance(v, np.ndarray) and v.ndim == 2:
            out[key] = cv2.resize(v.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        else:
            out[key] = v
    full_hw = next((v.shape for v in step.data.values() if isinstance(v, np.ndarray) and v.ndim == 2), hw)
    fy, fx = h / full_hw[0], w / full_hw[1]
    if isinstance(out.get("prompts"), Prompts):
        p = out["prompts"]
        out["prompts"] = Prompts(p.points * np.float32([fx, fy]), p.labels, p.scores)
    if "stages" in out:
        out["stages"] = tuple(SimpleNamespace(
            low_res_logits=s.low_res_logits,
            box=None if s.box is None else s.box * np.float32([fx, fy, fx, fy])) for s in out["stages"])
    return Step(step.name, step.title, step.caption, step.kind, out)


def step_caption(step: Step) -> str:
    """The one-line caption shown on the canvas ("Stage 2: points + stage-1 mask logits, ...")."""
    return step.caption if step.kind == "stage" else f"{step.title}: {step.caption}"


class StepStrip(QListWidget):
    """A row of thumbnails. Left/Right move the selection, Esc clears it (normal view): those
    keys are taken from the window's shortcuts (Esc = cancel) while the strip has focus."""

    KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Escape)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("method_strip")
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListWidget.Movement.Static)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.setGridSize(QSize(THUMB_SIDE + 16, THUMB_SIDE + 36))
        self.setWordWrap(True)
        self.setFixedHeight(THUMB_SIDE + 58)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def event(self, e):
        if e.type() == QEvent.Type.ShortcutOverride and e.key() in self.KEYS \
                and e.modifiers() == Qt.KeyboardModifier.NoModifier:
            e.accept()
            return True
        return super().event(e)

    def focusInEvent(self, e):
        """Focus alone does not pick a step (item views make the first item current)."""
        if self.currentRow() >= 0:
            super().focusInEvent(e)
            return
        self.blockSignals(True)
        try:
            super().focusInEvent(e)
            self.setCurrentRow(-1)
        finally:
            self.blockSignals(False)

    def keyPressEvent(self, e):
        key, row, n = e.key(), self.currentRow(), self.count()
        if key == Qt.Key.Key_Escape:
            self.setCurrentRow(-1)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and n:
            step = -1 if key == Qt.Key.Key_Left else 1
            self.setCurrentRow(int(np.clip((0 if row < 0 and step > 0 else row + step), 0, n - 1)))
        else:
            super().keyPressEvent(e)
            return
        e.accept()


class MethodPanel(QDockWidget):
    """The dock: the strip, an "Off" button and the caption of the selected step."""

    def __init__(self, window):
        super().__init__("Method: step by step", window)
        self.setObjectName("method_dock")
        self.controller, self.lane, self.canvas = window.controller, window.lane, window.canvas
        self._colormap = lambda: window.layers_box.colormap.currentText()
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(4, 4, 4, 4)
        self.source = QLabel("")                    # where the shown result's heatmap came from
        self.source.setObjectName("method_map_source")
        lay.addWidget(self.source)
        self.strip = StepStrip()
        lay.addWidget(self.strip)
        row = QHBoxLayout()
        self.off = QToolButton()
        self.off.setObjectName("method_off")
        self.off.setText("Off")
        self.off.setToolTip("Back to the normal view (Esc in the strip)")
        self.off.clicked.connect(lambda: self.strip.setCurrentRow(-1))
        row.addWidget(self.off)
        self.caption = QLabel("")
        self.caption.setObjectName("method_caption")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.caption, 1)
        lay.addLayout(row)
        self.setWidget(body)
        self._ppgs: dict[int, object] = {}
        self._latest: tuple | None = None          # (request, result, ppg) not yet drawn
        self._image_id: str | None = None
        self.request = None                        # the request of the explanation shown
        self.explanation = None
        self.steps: list[Step] = []
        self._full: dict[int, np.ndarray] = {}      # step row -> full-size rendering
        self._sharpen = QTimer(self, singleShot=True, interval=SHARPEN_MS)
        self._sharpen.timeout.connect(self._show_selected)
        self.strip.currentRowChanged.connect(lambda _row: self._show_selected())
        self.controller.ppg_shown.connect(self._on_ppg)
        self.controller.result_shown.connect(self._on_result)
        self.controller.document_shown.connect(self._on_document)
        self.visibilityChanged.connect(self._on_visibility)

    # -- lane results ---------------------------------------------------------------------------
    def _on_ppg(self, req, ppg) -> None:
        self._ppgs[req.serial] = ppg
        for serial in sorted(self._ppgs)[:-_PPG_KEEP]:
            del self._ppgs[serial]

    def _on_result(self, req, result) -> None:
        self._latest = (req, result, self._ppgs.pop(req.serial, None))
        self.source.setText(f"Heatmap from {map_source(result.provenance.get('map') or {})}")
        if self.isVisible():
            self._rebuild()

    def _on_document(self) -> None:
        doc = self.controller.doc
        image_id = None if doc is None else doc.image_id
        if image_id != self._image_id:
            self._image_id = image_id
            self._latest = None
            self._clear("waiting for the first refinement of this image")
        else:
            self._update_caption()

    def _on_visibility(self, visible: bool) -> None:
        if not visible:
            self.canvas.set_step(None)
        elif self._latest is not None:
            self._rebuild()
        else:
            self._show_selected()

    # -- building ---------------------------------------------------------------------------
    def _clear(self, note: str) -> None:
        self.request, self.explanation, self.steps, self._full = None, None, [], {}
        for i in range(self.strip.count()):
            self.strip.item(i).setIcon(QIcon())
        self.canvas.set_step(None)
        self.caption.setText(note)

    def _rebuild(self) -> None:
        req, result, ppg = self._latest
        self._latest = None
        image, pipe = self.controller.image, self.lane.pipeline
        if ppg is None or pipe is None or image is None or ppg.S.shape != image.shape[:2]:
            self._clear("no intermediates for this result")
            return
        self.request = req
        self.explanation = explanation_from(result, ppg, req.params, pipe, req.image_key,
                                            "auto" if req.prompts is None else "user", req.text_prompts)
        self.steps = self.explanation.steps()
        self._full = {}
        small, _f = downscale(image)
        cmap = self._colormap()
        if self.strip.count() != len(self.steps):
            self.strip.clear()
            for _ in self.steps:
                self.strip.addItem(QListWidgetItem())
        for i, step in enumerate(self.steps):
            thumb = render_step(small, scaled_step(step, small.shape[:2]), cmap, inset=False)
            item = self.strip.item(i)
            item.setIcon(QIcon(QPixmap.fromImage(rgb_to_qimage(thumb))))
            item.setText(f"{i + 1} {step.title.split(' (')[0]}")
            item.setToolTip(step_caption(step))
            item.setData(Qt.ItemDataRole.UserRole, step.name)
        self._show_selected(live=True)

    # -- the selected step ----------------------------------------------------------------------
    def selected_row(self) -> int:
        return self.strip.currentRow()

    def current_step(self) -> Step | None:
        row = self.strip.currentRow()
        return self.steps[row] if 0 <= row < len(self.steps) else None

    def select(self, name: str | None) -> None:
        """Show the step ``name`` (one of :data:`STEP_NAMES`), or the normal view (None)."""
        self.strip.setCurrentRow(-1 if name is None else STEP_NAMES.index(name))

    def _show_selected(self, live: bool = False) -> None:
        """Show the selected step on the canvas. ``live`` (a new result while edits stream in):
        a quick rendering at most LIVE_SIDE pixels long, sharpened later, so that a drag stays
        smooth on big images (a full-size rendering takes 40-200 ms at 1024x1024 on a CPU)."""
        self._sharpen.stop()
        step, row, image = self.current_step(), self.strip.currentRow(), self.controller.image
        if step is None or not self.isVisible() or image is None:
            self.canvas.set_step(None)
            self._update_caption()
            return
        if row in self._full:
            rgb = self._full[row]
        elif live and max(image.shape[:2]) > LIVE_SIDE:
            small, _f = downscale(image, LIVE_SIDE)
            rgb = render_step(small, scaled_step(step, small.shape[:2]), self._colormap())
            self._sharpen.start()
        else:
            rgb = self._full[row] = render_step(image, step, self._colormap())
        self.canvas.set_step(rgb, self.caption_text())
        self._update_caption()

    def caption_text(self) -> str:
        step = self.current_step()
        if step is None:
            return ""
        text = f"{self.strip.currentRow() + 1}/{len(self.steps)} · {step_caption(step)}"
        doc = self.controller.doc
        if doc is not None and self.request is not None and doc.revision != self.request.revision:
            text += "  (before your last edit)"
        return text

    def _update_caption(self) -> None:
        if self.explanation is None:
            return
        text = self.caption_text()
        self.caption.setText(text or "Off: normal view. Click a step, or focus the strip and use ← →")
        if text and self.canvas.step_caption():
            self.canvas.set_step_caption(text)


def install(window) -> MethodPanel:
    """Add the panel to ``window`` (bottom dock, hidden until View → Method panel)."""
    panel = MethodPanel(window)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, panel)
    panel.hide()
    act = window.actions["toggle_method"]
    panel.visibilityChanged.connect(lambda on: act.isChecked() != on and act.setChecked(on))
    return panel
