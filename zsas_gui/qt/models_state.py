"""Where the app stands with its models: one value, owned by the
:class:`~.controller.Controller` and changed only there (when it asks the lane to load or move
models, and when the lane answers with ``models_loaded`` / ``models_failed``)."""

from __future__ import annotations

from enum import StrEnum


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
