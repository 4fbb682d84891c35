"""Scene items of the image canvas: point markers and the paths of contours and outlines."""

from __future__ import annotations

import struct

import numpy as np
from PySide6.QtCore import QByteArray, QDataStream, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QLabel,
)

POSITIVE_COLOUR = QColor(40, 200, 70)
NEGATIVE_COLOUR = QColor(230, 50, 50)
HOVER_COLOUR = QColor(255, 230, 0)
#: Marker radius in screen pixels (points keep their size while zooming).
MARKER_RADIUS = 7.0
HOVER_RADIUS = 9.5

# z order of the layers
Z_IMAGE, Z_HEATMAP, Z_CONTOUR, Z_MASK, Z_OUTLINE, Z_SPLIT, Z_STROKE, Z_POINTS, Z_CURSOR = range(9)


class PointItem(QGraphicsItem):
    """One prompt point: a green "+" (positive) or red "−" (negative) disc with its number.

    Positioned at the point's (x, y) image pixel centre (scene = image pixel coordinates; pixel
    (c, r) covers [c, c+1) x [r, r+1), so the marker sits at (x + 0.5, y + 0.5)). Drawn at a fixed
    screen size (``ItemIgnoresTransformations``).
    """

    def __init__(self, index: int, positive: bool):
        super().__init__()
        self.index = index
        self.positive = positive
        self.hovered = False
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptHoverEvents(True)
        self.setZValue(Z_POINTS)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    # image (x, y) <-> scene position
    def set_image_xy(self, x: float, y: float) -> None:
        self.setPos(QPointF(x + 0.5, y + 0.5))

    def image_xy(self) -> tuple[float, float]:
        return self.pos().x() - 0.5, self.pos().y() - 0.5

    def set_label(self, index: int, positive: bool) -> None:
        if (index, positive) != (self.index, self.positive):
            self.index, self.positive = index, positive
            self.update()

    def set_hovered(self, on: bool) -> None:
        if on != self.hovered:
            self.prepareGeometryChange()
            self.hovered = on
            self.update()

    def hoverEnterEvent(self, event):
        self.set_hovered(True)
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event):
        self.set_hovered(False)
        super().hoverLeaveEvent(event)

    def boundingRect(self) -> QRectF:
        r = HOVER_RADIUS + 2
        return QRectF(-r, -r - 14, 2 * r + 30, 2 * r + 14)     # the marker and its number (top right)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        r = HOVER_RADIUS
        path.addEllipse(QPointF(0, 0), r, r)
        return path

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        r = HOVER_RADIUS if self.hovered else MARKER_RADIUS
        fill = POSITIVE_COLOUR if self.positive else NEGATIVE_COLOUR
        painter.setPen(QPen(HOVER_COLOUR if self.hovered else QColor(255, 255, 255), 2.0))
        painter.setBrush(QBrush(fill))
        painter.drawEllipse(QPointF(0, 0), r, r)
        painter.setPen(QPen(QColor(255, 255, 255), 2.0))
        a = r * 0.55
        painter.drawLine(QPointF(-a, 0), QPointF(a, 0))
        if self.positive:
            painter.drawLine(QPointF(0, -a), QPointF(0, a))
        font = QFont()
        font.setPixelSize(13)
        font.setBold(True)
        number = QPainterPath()             # the number with a dark halo: readable on any heatmap
        number.addText(QPointF(r + 2, -r + 4), font, str(self.index + 1))
        painter.strokePath(number, QPen(QColor(0, 0, 0, 220), 3.0))
        painter.fillPath(number, QBrush(fill.lighter(170)))


def mask_outline_path(mask: np.ndarray) -> QPainterPath:
    """Outline of a (H, W) bool mask as a painter path in scene (image pixel corner) coordinates,
    holes included."""
    import cv2

    m = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return _contours_path(contours)


def level_contour_path(index_map: np.ndarray, level: int) -> QPainterPath:
    """Contour of ``index_map >= level`` ((H, W) uint8 LUT indices, level in 0..255)."""
    import cv2

    m = (np.asarray(index_map) >= level).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    return _contours_path(contours)


def _contours_path(contours) -> QPainterPath:
    """Closed polygons through OpenCV contour points ((N, 1, 2) int32 (x, y) pixel centres each),
    shifted by half a pixel into scene coordinates. Built in one go through QDataStream (the
    binary form of a QPainterPath, pyqtgraph's ``arrayToQPath`` trick): a per-point Python loop
    takes tens of milliseconds on the fragmented masks of a noisy map."""
    polys = [c.reshape(-1, 2) for c in contours if len(c) >= 2]
    if not polys:
        return QPainterPath()
    closed = [np.vstack([p, p[:1]]) for p in polys]
    xy = np.concatenate(closed).astype(np.float64) + 0.5
    kind = np.ones(len(xy), np.int32)                      # 1 = lineTo
    starts = np.cumsum([0] + [len(p) for p in closed[:-1]])
    kind[starts] = 0                                        # 0 = moveTo
    rec = np.empty(len(xy), dtype=[("c", ">i4"), ("x", ">f8"), ("y", ">f8")])
    rec["c"], rec["x"], rec["y"] = kind, xy[:, 0], xy[:, 1]
    data = QByteArray(struct.pack(">i", len(rec)) + rec.tobytes() + struct.pack(">i", 0))  # 0: odd-even fill
    path = QPainterPath()
    stream = QDataStream(data, QIODevice.OpenModeFlag.ReadOnly)
    stream >> path
    return path


def stroke_path(points_xy: list[tuple[float, float]]) -> QPainterPath:
    """A polyline through image (x, y) points, in scene coordinates (pixel centres)."""
    path = QPainterPath()
    if points_xy:
        x0, y0 = points_xy[0]
        path.moveTo(x0 + 0.5, y0 + 0.5)
        if len(points_xy) == 1:
            path.lineTo(x0 + 0.51, y0 + 0.5)
        for x, y in points_xy[1:]:
            path.lineTo(x + 0.5, y + 0.5)
    return path


def cosmetic_pen(colour: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    """A pen whose width is in screen pixels whatever the zoom."""
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    return pen


def make_layer_items(scene, mask_rgb: tuple[int, int, int]) -> dict[str, QGraphicsItem]:
    """Create the canvas layers in ``scene``: image, clip (a rectangle clipping the heatmap, for
    the split view), heat, contour, mask, outline, split (line), stroke (brush preview), cursor."""
    white = QColor(255, 255, 255)
    image = QGraphicsPixmapItem()
    clip = QGraphicsRectItem()
    clip.setPen(QPen(Qt.PenStyle.NoPen))
    clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
    heat = QGraphicsPixmapItem(clip)
    heat.setOpacity(0.45)
    contour = QGraphicsPathItem()
    contour.setPen(cosmetic_pen(white, 1.5, Qt.PenStyle.DashLine))
    mask = QGraphicsPixmapItem()
    outline = QGraphicsPathItem()
    outline.setPen(cosmetic_pen(QColor(*mask_rgb), 2.0))
    split = QGraphicsLineItem()
    split.setPen(cosmetic_pen(white, 2.0))
    split.setVisible(False)
    stroke = QGraphicsPathItem()
    cursor = QGraphicsEllipseItem()
    cursor.setPen(cosmetic_pen(white, 1.0))
    cursor.setVisible(False)
    items = {"image": image, "clip": clip, "heat": heat, "contour": contour, "mask": mask,
             "outline": outline, "split": split, "stroke": stroke, "cursor": cursor}
    z = {"image": Z_IMAGE, "clip": Z_HEATMAP, "contour": Z_CONTOUR, "mask": Z_MASK, "outline": Z_OUTLINE,
         "split": Z_SPLIT, "stroke": Z_STROKE, "cursor": Z_CURSOR}
    for item in (contour, outline):   # long paths: repaint from a pixmap while points move over them
        item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    for name, item in items.items():
        if name != "heat":
            item.setZValue(z[name])
            scene.addItem(item)
    return items


GT_COLOUR = QColor(255, 225, 0)
#: The ground-truth outline: a bright dashed line over a dark halo, both in screen pixels, so it
#: reads on bright and dark images alike at any zoom (as labelme and CVAT draw outlines).
GT_LINE_WIDTH, GT_HALO_WIDTH = 2.0, 4.0
GT_HALO_COLOUR = QColor(0, 0, 0, 200)
Z_STEP = Z_SPLIT + 0.5         # above image, heatmap, mask and split line; below stroke and points
Z_GT = Z_OUTLINE + 0.5


class HaloPathItem(QGraphicsPathItem):
    """A path drawn twice: with the item's pen (the wider, dark halo; it also sizes the bounding
    box) and then with ``line`` on top."""

    def __init__(self, halo: QPen, line: QPen):
        super().__init__()
        self.setPen(halo)
        self.line = line

    def paint(self, painter: QPainter, option, widget=None) -> None:
        super().paint(painter, option, widget)
        painter.setPen(self.line)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())


def make_overlay_items(scene) -> tuple[QGraphicsPixmapItem, HaloPathItem]:
    """The method-step pixmap (hidden until a step is chosen) and the ground-truth outline
    (yellow dashes over a dark halo, cosmetic) in ``scene``."""
    step = QGraphicsPixmapItem()
    step.setZValue(Z_STEP)
    step.setVisible(False)
    gt = HaloPathItem(cosmetic_pen(GT_HALO_COLOUR, GT_HALO_WIDTH),
                      cosmetic_pen(GT_COLOUR, GT_LINE_WIDTH, Qt.PenStyle.DashLine))
    gt.setZValue(Z_GT)
    gt.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    for item in (step, gt):
        scene.addItem(item)
    return step, gt


def caption_label(view) -> QLabel:
    """A one-line caption in the top-left corner of ``view`` (hidden while empty)."""
    label = QLabel(view)
    label.setObjectName("step_caption")
    label.setStyleSheet("background: rgba(0, 0, 0, 170); color: white; padding: 4px 8px;")
    label.move(8, 8)
    label.setVisible(False)
    return label
