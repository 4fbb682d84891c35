"""The model manager: presets (fast / balanced / best, each with its models and expected cost), the
registry with installed/missing state and sizes, downloads with progress and cancel (on a worker
thread), local files, device and precision."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.engine.presets import PRESETS, get_preset
from ..core.models import registry
from .downloads import ModelDownloads

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "fp16")
COLUMNS = ("Kind", "Name", "Size", "State", "Description")


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def model_state(spec: registry.ModelSpec) -> str:
    """``installed``, ``partial (N MB)`` or ``missing`` for a registry entry."""
    target = registry.installed_path(spec)
    if target.is_file():
        return "installed"
    part = target.with_name(target.name + ".part")
    if part.is_file():
        return f"partial ({registry.format_size(part.stat().st_size)})"
    return "missing"


class ModelDialog(QDialog):
    """Emits ``models_chosen(clip, sam, device, precision)`` when the user presses Load."""

    models_chosen = Signal(object, object, str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("model_dialog")
        self.setWindowTitle("Models")
        self.downloads = ModelDownloads(self, "zsas-download")
        self.downloads.progress.connect(self._on_progress)
        self._downloading = ""            # the model being downloaded
        self.downloads.finished.connect(lambda error: self._on_finished(self._downloading, error))
        lay = QVBoxLayout(self)
        self.loaded = QLabel("Loaded now: none")
        self.loaded.setObjectName("loaded_models")
        self.loaded.setWordWrap(True)
        lay.addWidget(self.loaded)
        lay.addWidget(QLabel(f"Model folder: {registry.models_dir()} "
                             f"(set ${registry.MODELS_DIR_ENV} to use another)"))
        prow = QHBoxLayout()
        prow.addWidget(QLabel("Preset"))
        self.preset = QComboBox()
        self.preset.setObjectName("preset")
        self.preset.addItems(list(PRESETS))
        self.preset.currentTextChanged.connect(self._show_preset)
        prow.addWidget(self.preset)
        self.preset_btn = QPushButton("Apply preset")
        self.preset_btn.setObjectName("apply_preset")
        self.preset_btn.clicked.connect(lambda: self.apply_preset())
        prow.addWidget(self.preset_btn)
        prow.addStretch(1)
        lay.addLayout(prow)
        self.preset_info = QLabel("")
        self.preset_info.setObjectName("preset_info")
        self.preset_info.setWordWrap(True)
        lay.addWidget(self.preset_info)
        self._waiting_preset: str | None = None
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("model_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table)
        row = QHBoxLayout()
        self.download_btn = QPushButton("Download selected")
        self.download_btn.setObjectName("download")
        self.download_btn.clicked.connect(self.download_selected)
        self.cancel_btn = QPushButton("Cancel download")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel_download)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        row.addWidget(self.download_btn)
        row.addWidget(self.cancel_btn)
        row.addWidget(self.progress, 1)
        lay.addLayout(row)
        self.message = QLabel("")
        self.message.setObjectName("model_message")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)

        form = QFormLayout()
        self.clip_edit, self.sam_edit = QLineEdit(), QLineEdit()
        for kind, edit in (("clip", self.clip_edit), ("sam", self.sam_edit)):
            edit.setPlaceholderText(f"registry name or path (default: {registry.default_name(kind)})")
            box = QHBoxLayout()
            box.addWidget(edit, 1)
            browse = QPushButton("File…")
            browse.clicked.connect(lambda _c=False, e=edit, k=kind: self._browse(e, k, folder=False))
            folder = QPushButton("Folder…")
            folder.setToolTip("a model folder (e.g. a test model made by `zsas models make-test-models`)")
            folder.clicked.connect(lambda _c=False, e=edit, k=kind: self._browse(e, k, folder=True))
            box.addWidget(browse)
            box.addWidget(folder)
            form.addRow("CLIP" if kind == "clip" else "SAM", box)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.precision = QComboBox()
        self.precision.addItems(PRECISIONS)
        self.precision.setToolTip("auto: fp16 on CUDA, fp32 elsewhere")
        form.addRow("device", self.device)
        form.addRow("precision", self.precision)
        lay.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.load_btn = QPushButton("Load models")
        self.load_btn.setObjectName("load_models")
        self.load_btn.setDefault(True)
        self.load_btn.clicked.connect(self._load)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addWidget(self.load_btn)
        buttons.addWidget(close)
        lay.addLayout(buttons)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.refresh()
        self._show_preset(self.preset.currentText())
        self.resize(900, 520)

    def show_loaded(self, text: str) -> None:
        """What the lane has loaded now (``text``: e.g. "CLIP x + SAM y on CPU, fp32")."""
        self.loaded.setText(f"<b>Loaded now:</b> {text}")

    def refresh(self) -> None:
        specs = registry.list_specs()
        self.table.setRowCount(len(specs))
        for r, spec in enumerate(specs):
            state = model_state(spec)
            cells = (spec.kind.upper(), spec.name + (" (default)" if spec.default else ""), spec.size_text,
                     state, f"{spec.description} — licence: {spec.licence}")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, spec.name)
                if c == 3:
                    item.setForeground(Qt.GlobalColor.darkGreen if state == "installed" else Qt.GlobalColor.red)
                self.table.setItem(r, c, item)
        self._selection_changed()

    def selected_spec(self) -> registry.ModelSpec | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return registry.find_spec(self.table.item(rows[0].row(), 1).data(Qt.ItemDataRole.UserRole))

    def _selection_changed(self) -> None:
        spec = self.selected_spec()
        busy = self.downloads.running()
        self.download_btn.setEnabled(spec is not None and not busy and model_state(spec) != "installed")
        if spec is not None and model_state(spec) == "installed" and spec.kind in ("clip", "sam"):
            edit = self.clip_edit if spec.kind == "clip" else self.sam_edit   # backbones: --backbone
            edit.setText(spec.name)

    def _browse(self, edit: QLineEdit, kind: str, folder: bool) -> None:
        title = f"Choose a {kind.upper()} checkpoint"
        if folder:
            path = QFileDialog.getExistingDirectory(self, title)
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, title, "", "Checkpoints (*.pth *.pt *.bin *.safetensors *.ckpt);;All files (*)")
        if path:
            edit.setText(path)

    # -- presets --------------------------------------------------------------------------------
    @staticmethod
    def preset_specs(name: str) -> list[registry.ModelSpec]:
        p = get_preset(name)
        return [registry.get_spec(p.clip, "clip"), registry.get_spec(p.sam, "sam")]

    def _show_preset(self, name: str) -> None:
        p = get_preset(name)
        models = ", ".join(f"{s.kind.upper()} {s.name} ({s.size_text}, {model_state(s)})"
                           for s in self.preset_specs(name))
        self.preset_info.setText(f"<b>{p.name}</b>: {p.summary}.<br>Models: {models}.<br>"
                                 f"Expected cost: {p.cost_text}.")

    def apply_preset(self, name: str | None = None) -> bool:
        """Load the preset's models on the lane (``models_chosen``); when one is missing, say so,
        select it for download and apply the preset once the downloads are done. True if loading."""
        name = name or self.preset.currentText()
        self.preset.setCurrentText(name)
        p = get_preset(name)
        missing = [s for s in self.preset_specs(name) if model_state(s) != "installed"]
        if missing:
            self._waiting_preset = name
            self._select_spec(missing[0])
            self.message.setText(f"preset {name} needs {', '.join(f'{s.name} ({s.size_text})' for s in missing)}"
                                 f", not installed: press Download selected (the preset is applied once "
                                 f"{'they are' if len(missing) > 1 else 'it is'} downloaded)")
            return False
        self._waiting_preset = None
        self.clip_edit.setText(p.clip_arg)
        self.sam_edit.setText(p.sam)
        self.device.setCurrentText(p.device if p.device != "cuda" or _has_cuda() else "auto")
        self.precision.setCurrentText("auto")
        self._load()
        if p.device == "cuda" and not _has_cuda():
            self.message.setText(f"preset {name} is meant for a GPU; none here, so it runs on "
                                 f"{self.device.currentText()} (slow: {p.cost_text})")
        return True

    def _select_spec(self, spec: registry.ModelSpec) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 1).data(Qt.ItemDataRole.UserRole) == spec.name and \
                    self.table.item(r, 0).text() == spec.kind.upper():
                self.table.selectRow(r)
                return

    def _load(self) -> None:
        self.models_chosen.emit(self.clip_edit.text().strip() or None, self.sam_edit.text().strip() or None,
                                self.device.currentText(), self.precision.currentText())
        self.message.setText("loading the models in the background; the status bar shows the device")

    # -- downloads --------------------------------------------------------------------------------
    def download_selected(self) -> None:
        spec = self.selected_spec()
        if spec is None or self.downloads.running():
            return
        self.start_download(spec)

    def start_download(self, spec: registry.ModelSpec, download_fn=None) -> None:
        """Download ``spec`` on a worker thread (``download_fn`` defaults to the real one)."""
        if not self.downloads.start([spec], download_fn):
            return
        self._downloading = spec.name
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_btn.setEnabled(True)
        self.download_btn.setEnabled(False)
        self.message.setText(f"downloading {spec.name} ({spec.size_text}) from {spec.url}")

    def _on_progress(self, name: str, done: int, total) -> None:
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(done * 1000 / total))
            self.progress.setFormat(f"{registry.format_size(done)} / {registry.format_size(total)}")
        else:
            self.progress.setFormat(registry.format_size(done))

    def _on_finished(self, name: str, error: str) -> None:
        self.progress.setVisible(False)
        self.cancel_btn.setEnabled(False)
        self.message.setText(f"{name}: {error}" if error else f"{name} downloaded and verified")
        self.refresh()
        self._show_preset(self.preset.currentText())
        if not error and self._waiting_preset is not None:
            self.apply_preset(self._waiting_preset)   # the next missing model, or load

    def cancel_download(self) -> None:
        self.downloads.cancel()
        self.message.setText("cancelling… (the partial file is kept; downloading again resumes it)")

    def shutdown(self) -> None:
        """Cancel a running download and join its thread (window closing)."""
        self.downloads.stop()
