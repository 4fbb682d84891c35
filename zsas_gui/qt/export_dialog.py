"""File → Export…: the project's reviewed annotations as a dataset, through the same code as
``zsas export`` (:func:`~zsas_gui.state.project_export.export_project`, so core.export's
validation and all-or-nothing staging). Problems are listed before anything is written; the
export runs on a worker thread; at the end the output folder can be opened."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .settings import app_settings
from .threads import FunctionThread, user_message

FORMAT_TEXT = {
    "mvtec": "MVTec AD (train/good, test/<class>, ground_truth)",
    "folder": "anomalib Folder (good/, <class>/, mask/)",
    "coco": "COCO instances (JSON, RLE or polygons)",
    "labelme": "labelme (one JSON per image)",
    "yolo": "YOLO segmentation (polygons)",
    "png": "PNG masks beside copies of the images",
}
POLYGON_FORMATS = ("coco", "labelme")


class ExportDialog(QDialog):
    """``project``: the open :class:`~zsas_gui.state.project.Project`; ``flush``: saves the
    window's unsaved edits (called before exporting)."""

    finished_export = Signal(object)        # ExportReport or the exception (from the worker)

    def __init__(self, project, flush=lambda: None, parent: QWidget | None = None):
        from ..core.export import DEFAULT_INCLUDE, FORMATS
        from ..state.record import STATUSES

        super().__init__(parent)
        self.setObjectName("export_dialog")
        self.setWindowTitle("Export annotations")
        self.project, self._flush = project, flush
        self._thread: FunctionThread | None = None
        self.report = None
        s = app_settings()
        form = QFormLayout()
        self.format = QComboBox()
        self.format.setObjectName("export_format")
        for f in FORMATS:
            self.format.addItem(FORMAT_TEXT.get(f, f), f)
        self.format.setCurrentIndex(max(0, self.format.findData(s.value("export/format", "mvtec"))))
        form.addRow("Format", self.format)
        counts = project.summary()
        status_row = QHBoxLayout()
        self.statuses: dict[str, QCheckBox] = {}
        for st in STATUSES:
            box = QCheckBox(f"{st} ({counts.get(st, 0)})")
            box.setObjectName(f"export_status_{st}")
            box.setChecked(st in DEFAULT_INCLUDE)
            box.toggled.connect(self._update_summary)
            self.statuses[st] = box
            status_row.addWidget(box)
        form.addRow("Include", status_row)
        self.category = QLineEdit(project.root.name)
        self.category.setToolTip("dataset / category name (mvtec and folder layouts)")
        form.addRow("Category", self.category)
        out_row = QHBoxLayout()
        self.out = QLineEdit(str(s.value("export/out", "")) or str(project.root.parent / f"{project.root.name}_export"))
        self.out.setObjectName("export_out")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)
        form.addRow("Output folder", out_row)
        self.overwrite = QCheckBox("replace a previous zsas export in that folder")
        form.addRow("", self.overwrite)
        self.polygons = QCheckBox("polygons instead of masks / RLE (holes are lost)")
        form.addRow("", self.polygons)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        self.summary = QLabel("")
        self.summary.setObjectName("export_summary")
        lay.addWidget(self.summary)
        self.problems = QListWidget()
        self.problems.setObjectName("export_problems")
        self.problems.setVisible(False)
        lay.addWidget(self.problems, 1)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        lay.addWidget(self.progress)
        self.result = QLabel("")
        self.result.setObjectName("export_result")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.result)
        lay.addStretch(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setObjectName("export_button")
        self.export_button.setDefault(True)
        self.open_button = buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setObjectName("export_open_folder")
        self.open_button.setVisible(False)
        self.export_button.clicked.connect(self.start)
        self.open_button.clicked.connect(self.open_output)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.format.currentIndexChanged.connect(self._update_summary)
        self.finished_export.connect(self._finished)
        self._update_summary()
        self.resize(680, 360)

    # -- options -------------------------------------------------------------------------------
    def fmt(self) -> str:
        return self.format.currentData()

    def include(self) -> tuple[str, ...]:
        return tuple(st for st, box in self.statuses.items() if box.isChecked())

    def _update_summary(self) -> None:
        counts = self.project.summary()
        n = sum(counts.get(st, 0) for st in self.include())
        self.summary.setText(f"{n} image(s) will be exported as {self.fmt()}.")
        self.polygons.setEnabled(self.fmt() in POLYGON_FORMATS)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.out.text())
        if folder:
            self.out.setText(folder)

    def input_problems(self) -> list[str]:
        """What is wrong with the options themselves (checked before any work)."""
        problems = []
        if not self.include():
            problems.append("choose at least one status to include")
        if not self.out.text().strip():
            problems.append("choose an output folder")
        if not self.category.text().strip():
            problems.append("give the dataset a category name")
        return problems

    # -- running -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Validate and export on a worker thread. Returns False (problems listed) if the
        options are incomplete; the export's own problems arrive in :meth:`_finished`."""
        from ..state.project_export import export_project

        problems = self.input_problems()
        if problems:
            self._show_problems("Nothing was written:", problems)
            return False
        self._flush()                                  # the window's unsaved edits first
        s = app_settings()
        s.setValue("export/format", self.fmt())
        s.setValue("export/out", self.out.text().strip())
        args = (self.project, self.fmt(), Path(self.out.text().strip()).expanduser(), self.include(),
                self.category.text().strip())
        options = {"overwrite": self.overwrite.isChecked(),
                   "polygons": self.polygons.isChecked() and self.fmt() in POLYGON_FORMATS}

        def work():
            try:
                result = export_project(*args, **options)
            except Exception as exc:   # noqa: BLE001 - shown to the user; the thread must not die silently
                result = exc
            self.finished_export.emit(result)

        self.problems.setVisible(False)
        self.result.setText(f"Validating and writing {self.summary.text().split(' ')[0]} image(s)…")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.export_button.setEnabled(False)
        self.open_button.setVisible(False)
        self._thread = FunctionThread(work, "zsas-export", self)
        self._thread.start()
        return True

    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def _finished(self, result) -> None:
        from ..core.export import ExportValidationError

        if self._thread is not None:
            self._thread.wait()
            self._thread = None
        self.progress.setVisible(False)
        self.export_button.setEnabled(True)
        if isinstance(result, ExportValidationError):
            self._show_problems(f"{len(result.failures)} problem(s) found; nothing was written:", result.failures)
        elif isinstance(result, Exception):
            self._show_problems("Nothing was written:", [user_message(result)])
        else:
            self.report = result
            self.result.setText("<b>Done:</b> " + html.escape(str(result)).replace("\n", "<br>"))
            self.open_button.setVisible(True)

    def _show_problems(self, head: str, problems: list[str]) -> None:
        self.result.setText(f"<b style='color:#e66'>{head}</b>")
        self.problems.clear()
        self.problems.addItems(problems)
        self.problems.setVisible(True)

    def open_output(self) -> None:
        if self.report is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.report.out).resolve())))

    def closeEvent(self, event) -> None:
        if self._thread is not None:
            self._thread.wait()      # the export is staged: it finishes or leaves nothing behind
        super().closeEvent(event)


def open_export_dialog(window) -> ExportDialog | None:
    """The window's File → Export… (None, with a message, when no folder is open)."""
    c = window.controller
    if c.project is None:
        window.show_error("open a folder of images first (File → Open folder…), then export")
        return None
    dlg = ExportDialog(c.project, c.flush, window)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.show()
    return dlg
