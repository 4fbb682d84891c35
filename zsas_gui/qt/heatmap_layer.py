"""The canvas's heatmap layer: S through a 256-entry colour table, and the τ contour on it.

S is quantised once to an (H, W) uint8 index map; a colormap change swaps the colour table
(never recomputes the map) and a τ change redraws only the contour at that level.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsPixmapItem

from . import canvas_items as ci
from .convert import colormap_lut, indexed_qimage, scalar_to_indexed, set_colour_table


class HeatmapLayer:
    """Draws into the canvas's ``heat`` pixmap item and ``contour`` path item."""

    def __init__(self, heat_item: QGraphicsPixmapItem, contour_item: QGraphicsPathItem):
        self.heat_item, self.contour_item = heat_item, contour_item
        self.index: np.ndarray | None = None     # (H, W) uint8: S quantised to 0..255
        self.image: QImage | None = None         # indexed QImage over ``index``
        self.colormap = "jet"
        self.tau: float | None = None

    def set_map(self, s: np.ndarray | None) -> None:
        """Show S ((H, W) float32 in [0, 1]); None hides it."""
        if s is None:
            self.index = self.image = None
            self.heat_item.setPixmap(QPixmap())
            self.contour_item.setPath(ci.stroke_path([]))
            return
        self.index = scalar_to_indexed(s)
        self.image = indexed_qimage(self.index, colormap_lut(self.colormap))
        self.heat_item.setPixmap(QPixmap.fromImage(self.image))
        self._update_contour()

    def set_colormap(self, name: str) -> None:
        lut = colormap_lut(name)
        self.colormap = name
        if self.image is not None:
            set_colour_table(self.image, lut)
            self.heat_item.setPixmap(QPixmap.fromImage(self.image))

    def set_tau(self, tau: float | None) -> None:
        self.tau = tau
        self._update_contour()

    def _update_contour(self) -> None:
        if self.index is None or self.tau is None:
            self.contour_item.setPath(ci.stroke_path([]))
            return
        level = int(np.clip(round(self.tau * 255), 1, 255))
        self.contour_item.setPath(ci.level_contour_path(self.index, level))
