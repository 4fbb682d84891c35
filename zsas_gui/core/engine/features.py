"""What a :class:`~.pipeline.Pipeline` keeps per image and hands back per run: the SAM
embedding, the image's features (anomaly map + embedding) and the trace of one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..method.ppg import PPGResult
from ..types import AnomalyResult, SegmentationResult, TextPrompts


@dataclass(eq=False)
class SamEmbedding:
    """SAM's cached image state. ``features``: torch (1, C, g, g) on the model's device, over the
    padded ``long_side`` square; ``input_size``: (h, w) after resize; ``original_size``: (H, W)."""

    features: Any
    input_size: tuple[int, int]
    original_size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return int(self.features.numel() * self.features.element_size())

    def numpy(self) -> np.ndarray:
        """(C, g, g) float32 on the CPU."""
        return self.features[0].float().cpu().numpy()


@dataclass(eq=False)
class ImageFeatures:
    """Everything per image that prompt edits re-use. ``hw``: (H, W) of the image;
    ``text_prompts``: the prompts the map was made with (``text_key`` is their key)."""

    image_key: str
    hw: tuple[int, int]
    anomaly: AnomalyResult
    sam: SamEmbedding | None
    text_key: str
    timings: dict[str, float] = field(default_factory=dict)   # ms of the work done for this call
    text_prompts: TextPrompts | None = None
    _sam_np: np.ndarray | None = None

    def sam_features_np(self) -> np.ndarray | None:
        """(C, g, g) float32 SAM embedding on the CPU (converted once)."""
        if self.sam is None:
            return None
        if self._sam_np is None:
            self._sam_np = self.sam.numpy()
        return self._sam_np


@dataclass(frozen=True, eq=False)
class RunTrace:
    """What one :meth:`Pipeline.iter_run` used and produced: the (cached) features, the PPG
    result (None when the caller's prompts replaced PPG) and the :class:`SegmentationResult`,
    whose ``stages`` are the very :class:`StageResult` objects the cascade yielded."""

    features: ImageFeatures
    ppg: PPGResult | None
    result: SegmentationResult | None    # None only from ``iter_run(features_only=True)``
