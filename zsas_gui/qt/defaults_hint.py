"""A line above the parameters when the current image's parameters or text prompts differ from the
project's defaults (state/project_defaults.py), with a button that applies the defaults to it
(an undoable edit like any other)."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from ..state.project_defaults import differences

#: MethodParams field -> the parameter panel's label
FIELD_LABELS = {"tau": "τ", "k_pos": "positives k", "k_neg": "negatives", "d_min_1024": "spacing",
                "ring_1024": "ring", "min_area_frac": "min area", "negative_rule": "negative rule",
                "gate": "gate", "per_component": "one cascade per component"}


class DefaultsHint(QFrame):
    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.setObjectName("defaults_hint")
        self.setStyleSheet("QFrame#defaults_hint{background:#4a3b12;border-radius:4px;}"
                           "QLabel{color:#ffe9a8;}")
        self.controller = controller
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.apply = QPushButton("Use project defaults")
        self.apply.setToolTip("Set this image's parameters and text prompts to the project's (undoable)")
        self.apply.clicked.connect(self.use_defaults)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.apply)
        self.setVisible(False)

    def differences(self) -> list[str]:
        c = self.controller
        if c.doc is None:
            return []
        s = c.doc.state
        return [FIELD_LABELS.get(d, d) for d in differences(s.params, s.text_prompts, c.project_defaults.value)]

    def refresh(self) -> None:
        diff = self.differences()
        self.label.setText("This image differs from the project defaults: " + ", ".join(diff) if diff else "")
        self.setVisible(bool(diff))

    def use_defaults(self) -> None:
        c = self.controller
        if c.doc is None or c.project_defaults.value is None:
            return
        params, text = c.project_defaults.value
        c.set_params(params, "project defaults")
        c.set_text_prompts(text)


def install(window) -> DefaultsHint:
    """Above the parameter panel in the side panel; refreshed whenever the document is shown."""
    hint = DefaultsHint(window.controller)
    lay = window.params_panel.parentWidget().layout()
    lay.insertWidget(lay.indexOf(window.params_panel), hint)
    window.controller.document_shown.connect(hint.refresh)
    return hint
