"""Where the app stands with its models: one :class:`ModelsState` value, held by the
controller's :class:`ModelsStatus` and changed only there: when it asks the lane to load or move
models, and when the lane answers with ``models_loaded`` / ``models_failed``."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from .lane import InferenceLane


class ModelsState(StrEnum):
    NONE = "none"                   # nothing asked yet
    LOADING = "loading"             # the lane is loading or moving models
    READY = "ready"                 # CLIP and SAM loaded: heatmaps and masks
    HEATMAP_ONLY = "heatmap-only"   # CLIP only: heatmaps; masks are painted by hand
    MISSING = "missing"             # none could be loaded or chosen: the app explains how to get them

    @property
    def can_compute(self) -> bool:
        """Requests may be sent (while loading they wait behind the loading job)."""
        return self in (ModelsState.READY, ModelsState.HEATMAP_ONLY, ModelsState.LOADING)

    @property
    def loaded(self) -> bool:
        return self in (ModelsState.READY, ModelsState.HEATMAP_ONLY)


class ModelsStatus(QObject):
    """The controller's models state and the only code that changes it."""

    changed = Signal(object)        # ModelsState

    def __init__(self, lane: InferenceLane, parent: QObject | None = None):
        super().__init__(parent)
        self.lane = lane
        self.state = ModelsState.NONE
        if lane.has_pipeline:       # a lane made with its pipeline (tests, benchmarks)
            self.state = ModelsState.READY if lane.pipeline.sam is not None else ModelsState.HEATMAP_ONLY
        lane.models_loaded.connect(lambda info: self._set(
            ModelsState.READY if info["models"].get("sam") else ModelsState.HEATMAP_ONLY))
        lane.models_failed.connect(lambda _message: self._set(ModelsState.MISSING))

    def _set(self, state: ModelsState) -> None:
        if state != self.state:
            self.state = state
            self.changed.emit(state)

    def load(self, clip: str | None, sam: str | None, device: str = "auto", precision: str = "auto") -> None:
        """Load models on the lane; ``models_loaded`` or ``models_failed`` follows."""
        self._set(ModelsState.LOADING)
        self.lane.load_models(clip, sam, device, precision)

    def switch_device(self, device: str) -> None:
        """Move the loaded models to ``device`` on the lane (after running out of memory)."""
        self._set(ModelsState.LOADING)
        self.lane.switch_device(device)

    def missing(self) -> None:
        """No models could be chosen (the app explains how to get them)."""
        self._set(ModelsState.MISSING)
