"""The parameter panel's "Advanced" section: the CLIP map's §1 choices (``vv_start``, depths,
temperature, blur), the negatives' own spacing and the score outside the mask. Folded by
default; every value is recorded with each result (``MethodParams`` travels into records).
The CLIP input size is chosen with the model (Models…: ``NAME@SIZE``)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.types import MapSettings, MethodParams

AUTO = "auto"


def parse_depths(text: str) -> tuple[int, ...] | None:
    """``"auto"``/empty -> None; ``"5, 11,17"`` -> (5, 11, 17); raises ValueError otherwise."""
    text = text.strip()
    if not text or text.lower() == AUTO:
        return None
    return tuple(int(v) for v in text.replace(" ", ",").split(",") if v)


def spin_box(lo: float, hi: float, decimals: int, suffix: str, tip: str, step: float | None = None
             ) -> QDoubleSpinBox:
    """A QDoubleSpinBox with its range, decimals, unit suffix, tooltip and (optional) step."""
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    if step is not None:
        box.setSingleStep(step)
    return box


class AdvancedParams(QWidget):
    """Emits ``changed(name)`` with the ``MethodParams`` field (or ``clip_map``) the user edited."""

    changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("advanced")
        self.toggle = QToolButton(self)     # folds the section; its values apply either way
        self.toggle.setText("Advanced (CLIP map, negatives, score)")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.body = QWidget(self)
        form = QFormLayout(self.body)
        self.spacing_neg = spin_box(0, 1024, 0, " px@1024",
                                    "minimum spacing between negative points, pixels in SAM's 1024 frame")
        self.outside = spin_box(0.0, 1.0, 2, "", "pixel score outside the mask, as a share of the heatmap "
                                "(score = map × (w + (1 − w) × mask)); 0 = only the mask scores", 0.05)
        self.vv_start = QSpinBox()
        self.vv_start.setRange(-1, 63)
        self.vv_start.setSpecialValueText(AUTO)     # -1 shows "auto": 1/6 of the blocks
        self.vv_start.setToolTip("0-based block where the V-V surgery stream starts; auto = 1/6 of the "
                                 "blocks, never after the first depth")
        self.depths = QLineEdit()
        self.depths.setPlaceholderText(AUTO)
        self.depths.setToolTip("0-based blocks whose surgery tokens make the map, e.g. 5,11,17,23; "
                               "auto = 4 evenly spaced ending at the last block")
        self.temperature = spin_box(0.001, 10.0, 3, "", "softmax temperature of the token-vs-text cosine", 0.01)
        self.blur = spin_box(0.0, 64.0, 1, " px@518",
                             "Gaussian blur sigma of the heatmap, pixels at 518 scale (0 = none)")
        form.addRow("negative spacing", self.spacing_neg)
        form.addRow("outside weight", self.outside)
        form.addRow("V-V start block", self.vv_start)
        form.addRow("depths", self.depths)
        form.addRow("temperature", self.temperature)
        form.addRow("blur", self.blur)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.toggle)
        lay.addWidget(self.body)
        self.body.setVisible(False)
        self.toggle.toggled.connect(self._fold)
        for w, name in ((self.spacing_neg, "d_min_neg_1024"), (self.outside, "outside_weight"),
                        (self.vv_start, "clip_map"), (self.temperature, "clip_map"), (self.blur, "clip_map")):
            w.valueChanged.connect(lambda _v, n=name: self.changed.emit(n))
        self.depths.editingFinished.connect(lambda: self.changed.emit("clip_map"))

    def _fold(self, open_: bool) -> None:
        self.body.setVisible(open_)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)

    def widgets(self) -> tuple[QWidget, ...]:
        return (self.spacing_neg, self.outside, self.vv_start, self.depths, self.temperature, self.blur)

    def apply_to(self, p: MethodParams) -> MethodParams:
        """``p`` with this section's values; ValueError for a bad depth list (shown in red)."""
        try:
            depths = parse_depths(self.depths.text())
            self.depths.setStyleSheet("")
        except ValueError:
            self.depths.setStyleSheet("color: red")
            raise
        vv = self.vv_start.value()
        clip_map = MapSettings(vv_start=None if vv < 0 else vv, depths=depths,
                               temperature=round(float(self.temperature.value()), 4),
                               blur_sigma_518=round(float(self.blur.value()), 2))
        return p.replace(d_min_neg_1024=float(self.spacing_neg.value()),
                         outside_weight=round(float(self.outside.value()), 4), clip_map=clip_map)

    def show_params(self, p: MethodParams) -> None:
        """Show ``p``'s values (the caller blocks signals)."""
        m = p.clip_map
        self.spacing_neg.setValue(p.d_min_neg_1024)
        self.outside.setValue(p.outside_weight)
        self.vv_start.setValue(-1 if m.vv_start is None else m.vv_start)
        self.depths.setText("" if m.depths is None else ",".join(map(str, m.depths)))
        self.temperature.setValue(m.temperature)
        self.blur.setValue(m.blur_sigma_518)
