"""The folder maps' options in the "heatmap from" box (folder_map_panel.py): where the patch
features come from (the loaded CLIP image tower, or a timm model with a local weights file, as
the CLI's ``--backbone``/``--backbone-weights``) and the τ mode (the CLI's ``--tau-mode``, and
the gate calibrated on the good images: ALGORITHM.md §1b, decisions D30). The values are the
project's (:class:`~zsas_gui.state.project_defaults.MapOptions`); this module only shows them
and reports the user's changes. Parsing and loading a backbone are core's (``load_backbone``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QToolButton,
    QWidget,
)

from ..state.project_defaults import TAU_MODES, MapOptions

#: The τ modes as the selector shows them, with what each does (item tooltips).
TAU_TEXT = {
    "relative": ("each image (relative τ)",
                 ("τ cuts each image's heatmap between its own minimum and maximum (as the text map "
                 "does): every image gets a region, a normal one too")),
    "absolute": ("folder scale (absolute τ)",
                 ("τ cuts every image's heatmap on one scale for the whole folder: 0.5 is the level of "
                 "the images the map was calibrated on (the good images, or the folder's median "
                 "image); a normal image stays below it and gets a small region or none")),
    "gate": ("folder scale + gate",
             ("absolute τ, and the gate switched on at 0.5: an image whose score is below the good "
             "images' level is predicted normal (no points, empty mask). Leaving this mode switches "
             "the gate off again if it is still at 0.5")),
}
BACKBONE_TIP = ("Where the folder maps' patch features come from: the loaded CLIP model's image "
                "tower (no download), or a timm model (e.g. efficientnet_lite0, "
                "vit_small_patch14_dinov2, wide_resnet50_2) with its weights as a local timm state "
                "dict (.safetensors, or .pth)")


def registry_knows(arch: str) -> bool:
    """True when the model registry has a download entry for the timm model ``arch`` (its name or
    timm name): core's ``load_backbone`` then loads the downloaded file without a weights file
    chosen here, or says how to download it (Models → Manage, or ``zsas models download``)."""
    from ..core.models import registry

    spec = registry.find_spec(arch)
    return spec is not None and spec.kind not in ("clip", "sam")


class MapOptionsForm(QWidget):
    """The backbone (combo, timm model name, weights file) and the τ mode. Emits
    ``changed(MapOptions, what)`` (``what``: "backbone" or "tau_mode") on the user's changes
    only; a timm backbone is reported once it has a model name."""

    changed = Signal(object, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._options = MapOptions()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.backbone = QComboBox()
        self.backbone.setObjectName("map_backbone")
        self.backbone.setToolTip(BACKBONE_TIP)
        self.backbone.addItem("CLIP image tower", "clip")
        self.backbone.addItem("timm model", "timm")
        form.addRow("features", self.backbone)
        self.arch = QLineEdit()
        self.arch.setObjectName("map_backbone_arch")
        self.arch.setPlaceholderText("timm model, e.g. efficientnet_lite0")
        self.arch.setToolTip("the timm model name (timm.list_models() lists them)")
        self.weights = QLineEdit()
        self.weights.setObjectName("map_backbone_weights")
        self.weights.setPlaceholderText("weights file (.safetensors or .pth)")
        self.weights.setToolTip("the model's weights: a timm state dict file (.safetensors, or .pth "
                                "read with weights_only); 'random' = untrained, for comparisons only")
        self.browse = QToolButton()
        self.browse.setObjectName("map_backbone_browse")
        self.browse.setText("…")
        self.browse.setToolTip("choose the weights file")
        files = QHBoxLayout()
        files.addWidget(self.weights, 1)
        files.addWidget(self.browse)
        self.timm_rows = QWidget()
        timm_form = QFormLayout(self.timm_rows)
        timm_form.setContentsMargins(0, 0, 0, 0)
        timm_form.addRow("model", self.arch)
        timm_form.addRow("weights", files)
        form.addRow(self.timm_rows)
        self.tau_mode = QComboBox()
        self.tau_mode.setObjectName("map_tau_mode")
        self.tau_mode.setToolTip("How τ (and the gate) read a folder map; the text map always uses "
                                 "each image's range")
        for mode in TAU_MODES:
            text, tip = TAU_TEXT[mode]
            self.tau_mode.addItem(text, mode)
            self.tau_mode.setItemData(self.tau_mode.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        form.addRow("τ on", self.tau_mode)
        for combo in (self.backbone, self.tau_mode):       # never wider than the side panel
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        self.backbone.currentIndexChanged.connect(lambda _i: self._backbone_edited())
        self.arch.editingFinished.connect(self._backbone_edited)
        self.weights.editingFinished.connect(self._backbone_edited)
        self.browse.clicked.connect(self._choose_file)
        self.tau_mode.currentIndexChanged.connect(self._tau_edited)
        self.show_options(self._options)

    def options(self) -> MapOptions:
        return self._options

    def show_options(self, options: MapOptions) -> None:
        """Show ``options`` without emitting ``changed``."""
        self._options = options
        widgets = (self.backbone, self.arch, self.weights, self.tau_mode)
        for w in widgets:
            w.blockSignals(True)
        timm = options.backbone.startswith("timm:")
        self.backbone.setCurrentIndex(1 if timm else 0)
        self.arch.setText(options.backbone[5:] if timm else self.arch.text())
        self.weights.setText(options.weights if timm else self.weights.text())
        self.tau_mode.setCurrentIndex(max(0, self.tau_mode.findData(options.tau_mode)))
        for w in widgets:
            w.blockSignals(False)
        self.timm_rows.setVisible(timm)

    def set_folder_map(self, on: bool) -> None:
        """The options apply to folder maps only: enabled while one is chosen."""
        self.setEnabled(on)

    def _backbone_edited(self) -> None:
        timm = self.backbone.currentData() == "timm"
        self.timm_rows.setVisible(timm)
        arch = self.arch.text().strip()
        if timm and not arch:
            self.arch.setFocus()
            return                          # a name first: nothing to build yet
        new = replace(self._options, backbone=f"timm:{arch}" if timm else "clip",
                      weights=self.weights.text().strip() if timm else "")
        if new != self._options:
            self._options = new
            self.changed.emit(new, "backbone")

    def _choose_file(self) -> None:
        start = self.weights.text().strip() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Backbone weights (a timm state dict)", start,
                                              "timm state dict (*.safetensors *.pth *.pt);;All files (*)")
        if path:
            self.weights.setText(path)
            self._backbone_edited()

    def _tau_edited(self, _index: int) -> None:
        new = replace(self._options, tau_mode=self.tau_mode.currentData())
        if new != self._options:
            self._options = new
            self.changed.emit(new, "tau_mode")
