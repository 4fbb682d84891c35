"""Side panel: tools (points / brush / eraser, brush size, fill, clear) and layers (visibility,
heatmap opacity and colour map, mask opacity, split view). View-only: nothing here is computed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from .canvas import ImageCanvas
from .convert import COLORMAPS

BRUSH_RANGE = (1, 300)


def _bind(box: QCheckBox, action) -> None:
    """Keep a checkbox and a checkable QAction in step (both directions)."""
    box.setChecked(action.isChecked())
    box.toggled.connect(action.setChecked)
    action.toggled.connect(box.setChecked)


def _opacity_slider(value: float) -> QLabeledDoubleSlider:
    s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    s.setRange(0.0, 1.0)
    s.setDecimals(2)
    s.setValue(value)
    return s


class ToolsBox(QGroupBox):
    def __init__(self, canvas: ImageCanvas, actions: dict, parent: QWidget | None = None):
        super().__init__("Tools", parent)
        self.canvas = canvas
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        for key in ("tool_points", "tool_brush", "tool_eraser", "fill_holes", "clear_mask"):
            b = QToolButton()
            b.setDefaultAction(actions[key])
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        form = QFormLayout()
        self.brush = QSpinBox()
        self.brush.setObjectName("brush_size")
        self.brush.setRange(*BRUSH_RANGE)
        self.brush.setSuffix(" px")
        self.brush.setValue(8)
        self.brush.setToolTip("brush radius in image pixels ([ and ] change it)")
        self.brush.valueChanged.connect(canvas.set_brush_radius)
        canvas.set_brush_radius(self.brush.value())
        form.addRow("brush radius", self.brush)
        lay.addLayout(form)

    def step_brush(self, factor: float) -> None:
        v = self.brush.value()
        self.brush.setValue(max(v + 1, round(v * factor)) if factor > 1 else min(v - 1, round(v * factor)))


class LayersBox(QGroupBox):
    def __init__(self, canvas: ImageCanvas, actions: dict, parent: QWidget | None = None):
        super().__init__("Layers", parent)
        self.canvas = canvas
        lay = QVBoxLayout(self)
        grid = QGridLayout()
        self.image_box = QCheckBox("image")
        self.image_box.setChecked(True)
        self.image_box.toggled.connect(lambda on: canvas.set_layer_visible("image", on))
        grid.addWidget(self.image_box, 0, 0)
        self.boxes = {}
        for i, (key, text) in enumerate((("toggle_heatmap", "heatmap"), ("toggle_contour", "τ contour"),
                                         ("toggle_mask", "mask"), ("toggle_points", "points"),
                                         ("toggle_split", "split view"))):
            box = QCheckBox(text)
            _bind(box, actions[key])
            self.boxes[key] = box
            grid.addWidget(box, (i + 1) // 3, (i + 1) % 3)
        lay.addLayout(grid)
        form = QFormLayout()
        self.heat_opacity = _opacity_slider(canvas.heatmap_opacity())
        self.heat_opacity.setObjectName("heatmap_opacity")
        self.heat_opacity.valueChanged.connect(canvas.set_heatmap_opacity)
        form.addRow("heatmap opacity", self.heat_opacity)
        self.colormap = QComboBox()
        self.colormap.setObjectName("colormap")
        self.colormap.addItems(COLORMAPS)
        self.colormap.currentTextChanged.connect(canvas.set_colormap)
        form.addRow("colour map", self.colormap)
        self.mask_opacity = _opacity_slider(1.0)
        self.mask_opacity.valueChanged.connect(canvas.set_mask_opacity)
        form.addRow("mask opacity", self.mask_opacity)
        self.split = _opacity_slider(0.5)
        self.split.setObjectName("split")
        self.split.setToolTip("split view: the heatmap covers the image left of this fraction")
        self.split.valueChanged.connect(self._split_changed)
        form.addRow("split", self.split)
        lay.addLayout(form)
        actions["toggle_split"].toggled.connect(lambda _on: self._split_changed())
        self._split_changed()

    def _split_changed(self, *_args) -> None:
        on = self.boxes["toggle_split"].isChecked()
        self.split.setEnabled(on)
        self.canvas.set_split(self.split.value() if on else None)
