"""First run on any computer: the "Models needed" dialog. One button downloads the models
recommended for this computer (the ``auto`` preset: CPU -> fast, a CUDA GPU -> best) with size,
progress, cancel and checksum (core/models/download.py), then loads them, so the method runs on
the open folder — no trip through the model manager (which stays one click away)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.models import registry
from .downloads import ModelDownloads

NO_MODELS_TEXT = (
    "<p>No models are available yet, so there is no heatmap and no automatic mask. You can still "
    "browse the images, <b>paint masks by hand</b> (B: brush, E: eraser) and review them.</p>")


class ModelsNeededDialog(QDialog):
    """``preset``: the recommended :class:`~zsas_gui.core.engine.presets.Preset`; ``load``:
    called with (clip, sam) once every model is there. ``specs`` (the missing models),
    ``clip``/``sam`` (what is loaded after) and ``download_fn`` may be replaced before
    :meth:`start` (tests serve a test model from 127.0.0.1)."""

    def __init__(self, parent: QWidget | None, preset, load, open_manager, has_cuda: bool | None = None):
        super().__init__(parent)
        self.setObjectName("no_models_dialog")
        self.setWindowTitle("Models needed")
        self.setModal(False)
        self.preset, self._load = preset, load
        self.clip, self.sam = preset.clip_arg, preset.sam
        wanted = [registry.get_spec(preset.clip, "clip"), registry.get_spec(preset.sam, "sam")]
        self.specs = [s for s in wanted if not registry.installed_path(s).is_file()]
        self.download_fn = None
        self.downloads = ModelDownloads(self, "zsas-first-run-download")
        self.downloads.progress.connect(self._on_progress)
        self.downloads.finished.connect(self._on_finished)
        lay = QVBoxLayout(self)
        self._text = QLabel(NO_MODELS_TEXT)
        self._text.setWordWrap(True)
        self._text.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self._text)
        where = ("a CUDA GPU was found" if preset.name == "best" else "no CUDA GPU found")
        self.recommendation = QLabel("")
        self.recommendation.setObjectName("recommendation")
        self.recommendation.setWordWrap(True)
        self.recommendation.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.recommendation)
        self.command = QLabel("")
        self.command.setObjectName("download_command")
        self.command.setWordWrap(True)
        self.command.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.command)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        lay.addWidget(self.progress)
        self.message = QLabel("")
        self.message.setObjectName("download_message")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        self.details.setMaximumHeight(120)
        lay.addWidget(self.details)
        row = QHBoxLayout()
        self.download_btn = QPushButton("")
        self.download_btn.setObjectName("download_recommended")
        self.download_btn.setDefault(True)
        self.download_btn.clicked.connect(self.start)
        self.cancel_btn = QPushButton("Cancel download")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        manager = QPushButton("Model manager…")
        manager.clicked.connect(open_manager)
        self.details_btn = QPushButton("Details")
        self.details_btn.setCheckable(True)
        self.details_btn.toggled.connect(self.details.setVisible)
        self.details_btn.setVisible(False)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        for b in (self.download_btn, self.cancel_btn, manager, self.details_btn):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        lay.addLayout(row)
        self._where = where
        self.refresh()
        self.resize(560, 300)

    # -- what is shown ---------------------------------------------------------------------------
    def download_bytes(self) -> int:
        return sum(s.size_bytes or 0 for s in self.specs)

    def refresh(self) -> None:
        p, total = self.preset, registry.format_size(self.download_bytes())
        names = " + ".join(f"{s.name} ({s.size_text})" for s in self.specs) or "all installed"
        self.recommendation.setText(
            f"<b>Recommended for this computer</b> ({self._where}): <b>{p.name}</b> — {p.summary}; "
            f"{p.cost_text}.<br>To download: {names}.")
        self.download_btn.setText(f"Download recommended models ({total})" if self.specs else "Load the models")
        self.command.setText("Or on the command line: <code>zsas models download "
                             + " ".join(s.name for s in self.specs or [registry.get_spec(p.sam, "sam")])
                             + "</code>, then restart.")
        self.command.setTextFormat(Qt.TextFormat.RichText)

    def text(self) -> str:
        return self._text.text() + self.recommendation.text()

    def detailedText(self) -> str:
        return self.details.toPlainText()

    def setDetailedText(self, text: str) -> None:
        self.details.setPlainText(text)
        self.details_btn.setVisible(bool(text))

    # -- downloading -------------------------------------------------------------------------------
    def start(self) -> None:
        """Download the missing models one after the other on a worker thread, then load."""
        if self.downloads.running():
            return
        if not self.specs:
            self._load(self.clip, self.sam)
            return
        self.downloads.start(self.specs, self.download_fn)
        self._set_busy(True)
        self.message.setText(f"downloading {registry.format_size(self.download_bytes())}…")

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)
        self.cancel_btn.setEnabled(busy)
        self.download_btn.setEnabled(not busy)

    def _on_progress(self, name: str, done: int, total) -> None:
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(done * 1000 / total))
        self.message.setText(f"{name}: {registry.format_size(done)}"
                             + (f" / {registry.format_size(total)}" if total else ""))

    def _on_finished(self, error: str) -> None:
        self._set_busy(False)
        self.specs = [s for s in self.specs if not registry.installed_path(s).is_file()]
        self.refresh()
        if error:
            self.message.setText(error)
            return
        self.message.setText("downloaded and verified; loading the models…")
        self._load(self.clip, self.sam)

    def cancel(self) -> None:
        self.downloads.cancel()
        self.message.setText("cancelling… (the partial file is kept; downloading again resumes it)")

    def running(self) -> bool:
        return self.downloads.running()

    def closeEvent(self, event) -> None:
        self.downloads.stop()
        super().closeEvent(event)


def models_needed_dialog(window) -> ModelsNeededDialog:
    """The window's "Models needed" dialog for the models recommended on this computer."""
    from ..core.engine.presets import recommended_preset
    from .settings import app_settings

    device = str(app_settings().value("models/device") or "auto")
    preset = recommended_preset(device)
    return ModelsNeededDialog(window, preset, lambda clip, sam: window.load_models(clip, sam, device),
                              window.show_model_dialog)
