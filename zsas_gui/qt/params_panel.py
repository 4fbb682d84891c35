"""Side panel: method parameters (τ, k, negatives, spacing, ring, min area, gate, negative rule) and
text prompts. Views bind to the model napari-style: ``set_*`` updates widgets with signals blocked;
user edits come out as signals (the controller debounces the work they trigger)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from ..core.types import NEGATIVE_RULES, MethodParams, TextPrompts
from .advanced_params import AdvancedParams, spin_box

NEGATIVE_RULE_TEXT = {"sam_similarity": "least similar (SAM features)", "lowest_score": "lowest heatmap score"}


def split_lines(text: str) -> list[str]:
    """Non-empty stripped lines of ``text``."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _slider(lo: float, hi: float, decimals: int = 2) -> QLabeledDoubleSlider:
    s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(10 ** -decimals)
    return s


class ParamsPanel(QGroupBox):
    """Emits ``params_changed(params, name)`` where ``name`` is the field the user moved."""

    params_changed = Signal(object, str)
    regenerate_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Prompts and parameters", parent)
        self._params = MethodParams()
        form = QFormLayout()
        self.tau = _slider(0.0, 1.0)
        self.tau.setToolTip("τ: threshold on the normalised heatmap; the anomaly region is S ≥ τ")
        self.k_pos = QSpinBox()
        self.k_pos.setRange(1, 20)
        self.k_pos.setToolTip("number of positive points (top-k maxima of the region)")
        self.k_neg = QSpinBox()
        self.k_neg.setRange(0, 20)
        self.k_neg.setToolTip("number of negative points, taken in the ring around the region")
        self.spacing = spin_box(0, 1024, 0, " px@1024",
                                "minimum spacing between positive points, pixels in SAM's 1024 frame")
        self.ring = spin_box(1, 256, 0, " px@1024", "width of the ring around the region where negatives are chosen")
        self.min_area = QDoubleSpinBox()
        self.min_area.setRange(0.0, 10.0)
        self.min_area.setDecimals(3)
        self.min_area.setSingleStep(0.01)
        self.min_area.setSuffix(" %")
        self.min_area.setToolTip("mask components and holes smaller than this share of the image are removed")
        self.gate_on = QCheckBox("gate")
        self.gate_on.setToolTip("predict the image normal (no points, empty mask) when its score is below")
        self.gate = _slider(0.0, 1.0)
        self.rule = QComboBox()
        for r in NEGATIVE_RULES:
            self.rule.addItem(NEGATIVE_RULE_TEXT.get(r, r), r)
        self.per_component = QCheckBox("one cascade per anomaly component")
        gate_row = QHBoxLayout()
        gate_row.addWidget(self.gate_on)
        gate_row.addWidget(self.gate, 1)
        form.addRow("τ", self.tau)
        form.addRow("positives k", self.k_pos)
        form.addRow("negatives", self.k_neg)
        form.addRow("spacing", self.spacing)
        form.addRow("ring", self.ring)
        form.addRow("min area", self.min_area)
        form.addRow("negative rule", self.rule)
        form.addRow(gate_row)
        form.addRow(self.per_component)
        self.advanced = AdvancedParams()
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.advanced)
        row = QHBoxLayout()
        self.regenerate = QPushButton("Regenerate points")
        self.regenerate.setObjectName("regenerate")
        self.regenerate.setToolTip("Back to the automatic points from these parameters (R)")
        self.regenerate.clicked.connect(self.regenerate_requested)
        row.addWidget(self.regenerate)
        row.addStretch(1)
        lay.addLayout(row)
        self.mode_hint = QLabel("")
        self.mode_hint.setWordWrap(True)
        self.mode_hint.setObjectName("mode_hint")
        lay.addWidget(self.mode_hint)
        self.set_params(self._params)
        for w, name in ((self.tau, "tau"), (self.gate, "gate")):
            w.valueChanged.connect(lambda _v, n=name: self._changed(n))
        for w, name in ((self.k_pos, "k_pos"), (self.k_neg, "k_neg"), (self.spacing, "d_min_1024"),
                        (self.ring, "ring_1024"), (self.min_area, "min_area_frac")):
            w.valueChanged.connect(lambda _v, n=name: self._changed(n))
        self.gate_on.toggled.connect(lambda _v: self._changed("gate"))
        self.rule.currentIndexChanged.connect(lambda _i: self._changed("negative_rule"))
        self.per_component.toggled.connect(lambda _v: self._changed("per_component"))
        self.advanced.changed.connect(self._changed)

    def params(self) -> MethodParams:
        """The parameters shown; ValueError when a field holds a bad value."""
        return self.advanced.apply_to(self._params).replace(
            tau=round(float(self.tau.value()), 4), k_pos=self.k_pos.value(), k_neg=self.k_neg.value(),
            d_min_1024=float(self.spacing.value()), ring_1024=float(self.ring.value()),
            min_area_frac=round(self.min_area.value() / 100.0, 6),
            gate=round(float(self.gate.value()), 4) if self.gate_on.isChecked() else None,
            negative_rule=self.rule.currentData(), per_component=self.per_component.isChecked())

    def set_params(self, p: MethodParams) -> None:
        """Show ``p`` without emitting ``params_changed``."""
        self._params = p
        widgets = (self.tau, self.k_pos, self.k_neg, self.spacing, self.ring, self.min_area, self.gate,
                   self.gate_on, self.rule, self.per_component, *self.advanced.widgets())
        for w in widgets:
            w.blockSignals(True)
        self.tau.setValue(p.tau)
        self.k_pos.setValue(p.k_pos)
        self.k_neg.setValue(p.k_neg)
        self.spacing.setValue(p.d_min_1024)
        self.ring.setValue(p.ring_1024)
        self.min_area.setValue(p.min_area_frac * 100.0)
        self.gate_on.setChecked(p.gate is not None)
        self.gate.setValue(p.gate if p.gate is not None else 0.5)
        self.gate.setEnabled(p.gate is not None)
        self.rule.setCurrentIndex(max(0, self.rule.findData(p.negative_rule)))
        self.per_component.setChecked(p.per_component)
        self.advanced.show_params(p)
        for w in widgets:
            w.blockSignals(False)

    def set_manual(self, manual: bool) -> None:
        """Say whether the points are hand-edited (then τ, k, spacing … apply after Regenerate)."""
        self.mode_hint.setText("Points edited by hand: τ, k, spacing, ring and the negative rule apply "
                               "after Regenerate." if manual else "Automatic points (PPG).")

    def _changed(self, name: str) -> None:
        self.gate.setEnabled(self.gate_on.isChecked())
        try:
            p = self.params()
        except ValueError:
            return
        if p != self._params:
            self._params = p
            self.params_changed.emit(p, name)


class TextPromptsBox(QGroupBox):
    """Object name and the normal/abnormal state lists (one per line, ``{}`` = the object)."""

    text_prompts_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Text prompts", parent)
        self._tp = TextPrompts()
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.object_name = QLineEdit()
        self.object_name.setObjectName("object_name")
        self.object_name.setToolTip("what the images show, e.g. 'carpet', 'capsule', 'magnetic tile'")
        self.object_name.editingFinished.connect(self._apply)
        form.addRow("object", self.object_name)
        lay.addLayout(form)
        self.normal = QPlainTextEdit()
        self.abnormal = QPlainTextEdit()
        for w, tip in ((self.normal, "normal states"), (self.abnormal, "abnormal states")):
            w.setToolTip(f"{tip}, one per line; {{}} stands for the object name")
            w.setMaximumHeight(90)
        lay.addWidget(QLabel("normal states"))
        lay.addWidget(self.normal)
        lay.addWidget(QLabel("abnormal states"))
        lay.addWidget(self.abnormal)
        row = QHBoxLayout()
        apply = QPushButton("Apply")
        apply.setToolTip("Recompute the heatmap with these prompts (text features are cached)")
        apply.clicked.connect(self._apply)
        reset = QPushButton("Defaults")
        reset.clicked.connect(self._defaults)
        row.addWidget(apply)
        row.addWidget(reset)
        row.addStretch(1)
        lay.addLayout(row)
        self.error = QLabel("")
        self.error.setObjectName("text_prompt_error")
        self.error.setStyleSheet("color: #e66;")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        self.set_text_prompts(self._tp)

    def text_prompts(self) -> TextPrompts:
        """The prompts last applied (not what is being typed)."""
        return self._tp

    def set_text_prompts(self, tp: TextPrompts) -> None:
        self._tp = tp
        self.object_name.setText(tp.object_name)
        self.normal.setPlainText("\n".join(tp.normal_states))
        self.abnormal.setPlainText("\n".join(tp.abnormal_states))
        self.error.setText("")

    def _defaults(self) -> None:
        base = TextPrompts(object_name=self.object_name.text().strip() or "object")
        self.set_text_prompts(base)
        self._apply()

    def _apply(self) -> None:
        try:
            tp = TextPrompts(object_name=self.object_name.text().strip(),
                             normal_states=tuple(split_lines(self.normal.toPlainText())),
                             abnormal_states=tuple(split_lines(self.abnormal.toPlainText())),
                             templates=self._tp.templates)
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        self.error.setText("")
        if tp != self._tp:
            self._tp = tp
            self.text_prompts_changed.emit(tp)
