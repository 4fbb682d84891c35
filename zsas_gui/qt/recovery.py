"""A model failing mid-run: out of memory is recognised, the user is told and offered a way on
(move the models to the CPU, or load the fast preset), and the lane keeps working.

- :func:`is_out_of_memory`: which errors count as running out of memory;
- :func:`moved_pipeline`: a Pipeline over the same models on another device (the lane's
  :class:`~.lane_jobs.SwitchDevice` job);
- :class:`OutOfMemoryBox`: the non-modal message with "Switch to CPU" and "Use a smaller model";
- :class:`OutOfMemoryControls`: shows it when the window's lane reports running out of memory.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget

log = logging.getLogger(__name__)

SMALLER_PRESET = "fast"


def is_out_of_memory(exc: BaseException) -> bool:
    """A :class:`~zsas_gui.core.errors.DeviceMemoryError`, a ``MemoryError``, or a RuntimeError
    (torch's ``OutOfMemoryError`` included) whose message says "out of memory"."""
    from ..core.errors import DeviceMemoryError

    return isinstance(exc, (DeviceMemoryError, MemoryError)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def moved_pipeline(old: Any, device: str, disk_cache: Any = None) -> Any:
    """A new Pipeline over ``old``'s models moved to ``device`` (fp32 on the CPU), with ``old``'s
    disk cache (else ``disk_cache``) and decoder/encoder choice. ``old``'s memory caches are
    cleared first (on a GPU they hold the memory that ran out)."""
    import torch

    from ..core.engine.pipeline import Pipeline

    dev = torch.device(device)
    dtype = torch.float32 if dev.type == "cpu" else None
    old.clear_caches()

    def move(bundle):
        if bundle is None:
            return None
        model = bundle.model.to(dev)
        if dtype is not None:
            model = model.to(dtype)
        return dataclasses.replace(bundle, model=model, device=dev, dtype=dtype or bundle.dtype)

    clip, sam = move(old.clip), move(old.sam)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return Pipeline(clip, sam, disk_cache=old.disk_cache or disk_cache,
                    decoder=getattr(old, "decoder", "auto"), encoder=getattr(old, "encoder", "auto"))


class OutOfMemoryBox(QMessageBox):
    """Non-modal: says the model ran out of memory and offers the CPU or a smaller model.
    ``cpu_button`` / ``smaller_button`` are the two offers (either closes the box)."""

    def __init__(self, parent: QWidget, on_cpu, on_smaller):
        super().__init__(QMessageBox.Icon.Warning, "Out of memory", "", QMessageBox.StandardButton.Close,
                         parent)
        self.setObjectName("out_of_memory_dialog")
        self.setModal(False)
        self.cpu_button: QPushButton = self.addButton("Switch to CPU", QMessageBox.ButtonRole.ActionRole)
        self.smaller_button: QPushButton = self.addButton("Use a smaller model",
                                                          QMessageBox.ButtonRole.ActionRole)
        self.cpu_button.setObjectName("oom_cpu")
        self.smaller_button.setObjectName("oom_smaller")
        self.cpu_button.clicked.connect(on_cpu)
        self.smaller_button.clicked.connect(on_smaller)

    def show_message(self, message: str, device: str) -> None:
        self.setText(f"<p><b>The model ran out of memory</b> on {device}.</p><p>Your annotations are "
                     "safe and the app keeps working. Switch the models to the CPU (slower, uses main "
                     f"memory), or load the smaller <b>{SMALLER_PRESET}</b> preset.</p>")
        self.setDetailedText(message)
        self.show()
        self.raise_()


class OutOfMemoryControls(QObject):
    """Connects ``window.lane.out_of_memory`` to the :class:`OutOfMemoryBox` and carries out its offers."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.box: OutOfMemoryBox | None = None
        window.lane.out_of_memory.connect(self.on_out_of_memory)

    def on_out_of_memory(self, _request, message: str) -> None:
        if self.box is None:
            self.box = OutOfMemoryBox(self.window, self.switch_to_cpu, self.use_smaller_model)
        pipe = self.window.lane.pipeline
        bundle = None if pipe is None else (pipe.sam or pipe.clip)
        self.box.show_message(message, str(bundle.device) if bundle is not None else "the device")

    def switch_to_cpu(self) -> None:
        """Move the loaded models to the CPU on the lane (the current image is sent again after)."""
        from .settings import app_settings

        w = self.window
        w.controller.models_state = "loading"
        w.status.device.setText("moving models to the CPU…")
        app_settings().setValue("models/device", "cpu")
        w.lane.switch_device("cpu")

    def use_smaller_model(self) -> None:
        """Load the fast preset (the model manager says which models are missing and offers them)."""
        w = self.window
        w.show_model_dialog()
        w._model_dialog.apply_preset(SMALLER_PRESET)
