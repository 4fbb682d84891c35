"""The image canvas: a QGraphicsView with the image, heatmap, τ contour, mask and point layers.

Scene coordinates are image pixel coordinates (pixel (c, r) covers [c, c+1) x [r, r+1)). The
canvas shows state and reports gestures as signals; it never edits a document itself.

Mouse: wheel zooms around the cursor; drag on empty space, middle-drag or Space+drag pans.
Points tool: left click adds a positive, right click a negative, drag moves a point, Ctrl+click
removes it. Brush/eraser tools: left drag paints/erases a round stroke.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView

from ..core.types import Prompts
from . import canvas_items as ci
from .convert import mask_to_qimage, rgb_to_qimage
from .heatmap_layer import HeatmapLayer

LAYERS = ("image", "heatmap", "contour", "mask", "points", "gt")
TOOLS = ("points", "brush", "eraser")
MASK_RGB = (255, 40, 200)
#: Mouse travel (screen px) that turns a click on empty space into a pan.
CLICK_SLOP_PX = 4
ZOOM_STEP = 1.0015   # per wheel-delta unit (120 per notch -> x1.2)
ZOOM_RANGE = (0.02, 64.0)


class ImageCanvas(QGraphicsView):
    point_added = Signal(float, float, bool)          # x, y (image px), positive
    point_moved = Signal(int, float, float)           # index, x, y while dragging
    point_drag_finished = Signal(int)                 # index
    point_removed = Signal(int)                       # index
    stroke_finished = Signal(object, float, bool)     # (N, 2) float32 (x, y) px, radius px, value
    zoom_changed = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setBackgroundBrush(QBrush(QColor(38, 38, 42)))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)
        self._build_layers()
        self._step_item, self._gt_item = ci.make_overlay_items(self.scene())
        self._layer_items["gt"] = [self._gt_item]
        self._caption = ci.caption_label(self)
        self._hw: tuple[int, int] | None = None
        self._mask: np.ndarray | None = None
        self._mask_alpha = 90
        self._points: list[ci.PointItem] = []
        self._tool = "points"
        self._brush_radius = 8.0
        self._space = False
        self._gesture: dict | None = None
        self._split: float | None = None

    def _build_layers(self) -> None:
        it = ci.make_layer_items(self.scene(), MASK_RGB)
        (self._image_item, self._clip, self._heat_item, self._contour_item, self._mask_item,
         self._outline_item, self._split_line, self._stroke_item, self._cursor_item) = (
            it[k] for k in ("image", "clip", "heat", "contour", "mask", "outline", "split", "stroke", "cursor"))
        self._layer_items = {"image": [self._image_item], "heatmap": [self._clip],
                             "contour": [self._contour_item],
                             "mask": [self._mask_item, self._outline_item], "points": []}
        self._visible = dict.fromkeys(LAYERS, True)
        self.heatmap = HeatmapLayer(self._heat_item, self._contour_item)

    # -- content ---------------------------------------------------------------------------
    @property
    def image_hw(self) -> tuple[int, int] | None:
        return self._hw

    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show a new (H, W, 3) uint8 RGB image (None clears); clears the other layers and fits."""
        self.set_heatmap(None)
        self.set_mask(None)
        self.set_points(Prompts.empty())
        self.set_step(None)
        self._stroke_item.setPath(ci.stroke_path([]))
        self._gesture = None
        if rgb is None:
            self._hw = None
            self._image_item.setPixmap(QPixmap())
            return
        self._hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        self._image_item.setPixmap(QPixmap.fromImage(rgb_to_qimage(rgb)))
        h, w = self._hw
        self.setSceneRect(QRectF(-w, -h, 3 * w, 3 * h))   # room to pan past the edges
        self._update_split()
        self.fit()

    def set_heatmap(self, s: np.ndarray | None) -> None:
        """Show S ((H, W) float32 in [0, 1]) through the colour table; None hides it."""
        self.heatmap.set_map(s)

    def set_colormap(self, name: str) -> None:
        """Restyle the heatmap: swaps the 256-entry table, never recomputes the map."""
        self.heatmap.set_colormap(name)

    def set_heatmap_opacity(self, opacity: float) -> None:
        self._heat_item.setOpacity(float(np.clip(opacity, 0.0, 1.0)))

    def heatmap_opacity(self) -> float:
        return self._heat_item.opacity()

    def set_tau(self, tau: float | None) -> None:
        self.heatmap.set_tau(tau)

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show a (H, W) bool mask as translucent fill plus outline; None hides it. Masks are never
        mutated in place, so the same array object is not drawn again."""
        if mask is self._mask and mask is not None:
            return
        self._mask = mask
        if mask is None:
            self._mask_item.setPixmap(QPixmap())
            self._outline_item.setPath(ci.stroke_path([]))
            return
        self._mask_item.setPixmap(QPixmap.fromImage(mask_to_qimage(mask, MASK_RGB, self._mask_alpha)))
        self._outline_item.setPath(ci.mask_outline_path(mask))

    def set_step(self, rgb: np.ndarray | None, caption: str = "") -> None:
        """Show one step of the method ((h, w, 3) uint8 RGB, the image or a downscaled copy
        stretched over it) above the image, heatmap and mask layers (the point markers stay on
        top), with a one-line caption; None returns to the normal view."""
        self._step_item.setPixmap(QPixmap() if rgb is None else QPixmap.fromImage(rgb_to_qimage(rgb)))
        if rgb is not None and self._hw is not None:     # a smaller rendering covers the image
            self._step_item.setScale(self._hw[1] / rgb.shape[1])
        self._step_item.setVisible(rgb is not None)
        self.set_step_caption(caption if rgb is not None else "")

    def set_step_caption(self, caption: str) -> None:
        self._caption.setText(caption)
        self._caption.adjustSize()
        self._caption.setVisible(self._step_item.isVisible() and bool(caption))

    def step_caption(self) -> str:
        return self._caption.text() if self._step_item.isVisible() else ""

    def set_ground_truth(self, mask: np.ndarray | None) -> None:
        """Outline a ground-truth (H, W) bool mask (yellow dashes over a dark halo); None removes it."""
        self._gt_item.setPath(ci.stroke_path([]) if mask is None else ci.mask_outline_path(mask))

    def set_mask_opacity(self, opacity: float) -> None:
        self._mask_item.setOpacity(float(np.clip(opacity, 0.0, 1.0)))

    def set_points(self, prompts: Prompts) -> None:
        """Show the prompt points; existing markers are moved, not rebuilt (smooth dragging)."""
        n = len(prompts)
        g = self._gesture
        dragged = g["item"] if g is not None and g["kind"] == "drag" else None
        while len(self._points) > n:
            self.scene().removeItem(self._points.pop())
        for i in range(n):
            pos = bool(prompts.labels[i] == 1)
            if i == len(self._points):
                item = ci.PointItem(i, pos)
                item.setVisible(self._visible["points"])
                self.scene().addItem(item)
                self._points.append(item)
            item = self._points[i]
            item.set_label(i, pos)
            if item is not dragged:           # the marker under the mouse stays with the mouse
                item.set_image_xy(float(prompts.points[i, 0]), float(prompts.points[i, 1]))

    def point_items(self) -> list[ci.PointItem]:
        return list(self._points)

    def hovered_point(self) -> int | None:
        for item in self._points:
            if item.hovered:
                return item.index
        return None

    # -- layers and view ----------------------------------------------------------------------
    def set_layer_visible(self, name: str, on: bool) -> None:
        if name not in LAYERS:
            raise ValueError(f"unknown layer {name!r}; layers are {LAYERS}")
        self._visible[name] = on
        for item in self._layer_items[name] + (self._points if name == "points" else []):
            item.setVisible(on)

    def layer_visible(self, name: str) -> bool:
        return self._visible[name]

    def set_split(self, fraction: float | None) -> None:
        """Split view: the heatmap covers only the left ``fraction`` of the image (None: all)."""
        self._split = None if fraction is None else float(np.clip(fraction, 0.0, 1.0))
        self._update_split()

    def _update_split(self) -> None:
        if self._hw is None:
            return
        h, w = self._hw
        f = 1.0 if self._split is None else self._split
        self._clip.setRect(QRectF(0, 0, w * f, h))
        self._split_line.setLine(w * f, 0, w * f, h)
        self._split_line.setVisible(self._split is not None)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; tools are {TOOLS}")
        self._tool = tool
        self._cursor_item.setVisible(False)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if tool == "points" else Qt.CursorShape.BlankCursor)

    @property
    def tool(self) -> str:
        return self._tool

    def set_brush_radius(self, radius: float) -> None:
        self._brush_radius = max(1.0, float(radius))

    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        new = float(np.clip(self.zoom() * factor, *ZOOM_RANGE))
        if new == self.zoom():
            return
        f = new / self.zoom()
        if anchor is not None:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
            before = self.mapToScene(anchor.toPoint())
            self.scale(f, f)
            after = self.mapToScene(anchor.toPoint())
            d = after - before
            self.translate(d.x(), d.y())
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        else:
            self.scale(f, f)
        self.zoom_changed.emit(self.zoom())

    def fit(self) -> None:
        if self._hw is not None:
            h, w = self._hw
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.zoom())

    def actual_size(self) -> None:
        centre = self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.centerOn(centre)
        self.zoom_changed.emit(self.zoom())

    # -- gestures -----------------------------------------------------------------------------
    def _image_xy(self, view_pos) -> tuple[float, float]:
        p = self.mapToScene(view_pos)
        return p.x() - 0.5, p.y() - 0.5

    def _inside(self, x: float, y: float) -> bool:
        return self._hw is not None and -0.5 <= x < self._hw[1] - 0.5 and -0.5 <= y < self._hw[0] - 0.5

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        h, w = self._hw
        return float(np.clip(x, 0, w - 1)), float(np.clip(y, 0, h - 1))

    def _point_at(self, view_pos) -> ci.PointItem | None:
        for item in self.items(view_pos):
            if isinstance(item, ci.PointItem) and item.isVisible():
                return item
        return None

    def wheelEvent(self, event):
        delta = event.angleDelta().y()
        if delta:
            self.zoom_by(ZOOM_STEP ** delta, event.position())
        event.accept()

    def keyPressEvent(self, event):
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event):
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.set_tool(self._tool)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event):
        pos = event.position().toPoint()
        btn = event.button()
        if self._hw is None:
            return
        if btn == Qt.MouseButton.MiddleButton or (btn == Qt.MouseButton.LeftButton and self._space):
            self._gesture = {"kind": "pan", "last": pos}
            return
        if self._tool == "points":
            item = self._point_at(pos)
            ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            if item is not None and ctrl:
                self.point_removed.emit(item.index)
            elif item is not None and btn == Qt.MouseButton.LeftButton:
                self._gesture = {"kind": "drag", "item": item, "moved": False}
            elif item is None and btn in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
                self._gesture = {"kind": "click", "start": pos, "last": pos,
                                 "positive": btn == Qt.MouseButton.LeftButton}
            return
        if btn == Qt.MouseButton.LeftButton:
            x, y = self._clamp(*self._image_xy(pos))
            self._gesture = {"kind": "stroke", "pts": [(x, y)], "value": self._tool == "brush"}
            self._update_stroke()

    def mouseMoveEvent(self, event):
        pos = event.position().toPoint()
        g = self._gesture
        if self._tool != "points" and self._hw is not None:
            x, y = self._image_xy(pos)
            r = self._brush_radius
            self._cursor_item.setRect(QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))
            self._cursor_item.setVisible(not self._space)
        if g is None:
            super().mouseMoveEvent(event)
            return
        if g["kind"] == "click" and (pos - g["start"]).manhattanLength() > CLICK_SLOP_PX:
            g["kind"] = "pan"
        if g["kind"] == "pan":
            d = pos - g["last"]
            g["last"] = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - d.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - d.y())
        elif g["kind"] == "drag":
            x, y = self._clamp(*self._image_xy(pos))
            g["moved"] = True
            g["item"].set_image_xy(x, y)
            self.point_moved.emit(g["item"].index, x, y)
        elif g["kind"] == "stroke":
            g["pts"].append(self._clamp(*self._image_xy(pos)))
            self._update_stroke()

    def mouseReleaseEvent(self, event):
        g, self._gesture = self._gesture, None
        if g is None:
            super().mouseReleaseEvent(event)
            return
        if g["kind"] == "click":
            x, y = self._image_xy(event.position().toPoint())
            if self._inside(x, y):
                x, y = self._clamp(x, y)
                self.point_added.emit(x, y, g["positive"])
        elif g["kind"] == "drag" and g["moved"]:
            self.point_drag_finished.emit(g["item"].index)
        elif g["kind"] == "stroke":
            self._stroke_item.setPath(ci.stroke_path([]))
            self.stroke_finished.emit(np.asarray(g["pts"], np.float32), self._brush_radius, g["value"])

    def _update_stroke(self) -> None:
        g = self._gesture
        colour = QColor(*MASK_RGB, 150) if g["value"] else QColor(255, 255, 255, 150)
        pen = QPen(colour, 2 * self._brush_radius, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        self._stroke_item.setPen(pen)
        self._stroke_item.setPath(ci.stroke_path(g["pts"]))

    def leaveEvent(self, event):
        self._cursor_item.setVisible(False)
        super().leaveEvent(event)

