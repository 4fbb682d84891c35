"""Loaded models with what travels with them (preprocessing, ids, device, precision)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# OpenAI CLIP normalisation (open_clip's OPENAI_DATASET_MEAN/STD)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipBundle:
    """An open_clip model ready for the anomaly mapper.

    ``model``: ``open_clip.CLIP`` in eval mode on ``device``; ``tokenizer``: open_clip tokenizer
    (list[str] -> LongTensor (N, 77)); ``image_size``: square input side in pixels (e.g. 518);
    ``mean``/``std``: per-channel RGB normalisation of [0, 1] pixels; ``model_id``: stable id
    used in cache keys and provenance (e.g. ``"ViT-L-14-336-quickgelu/openai@518"``).
    """

    model: Any
    tokenizer: Callable
    model_id: str
    image_size: int
    device: Any
    dtype: Any
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    info: dict[str, Any] = field(default_factory=dict)   # arch, source file, random test model flag


@dataclass
class SamBundle:
    """A SAM model of one family ready for its predictor (``core.sam.backends``).

    ``family``: ``"sam1"`` (segment_anything ``Sam``, incl. MobileSAM), ``"sam2"`` (``SAM2Base``)
    or ``"sam_hq"`` (segment_anything_hq ``Sam``); ``long_side``: the encoder's input side (1024
    for real models); ``mask_input_size``: (h, w) of ``mask_input``/low-res logits (256x256 for
    real models); ``model_id``: stable id for cache keys and provenance (e.g. ``"sam_vit_h"``).
    """

    model: Any
    model_id: str
    device: Any
    dtype: Any
    info: dict[str, Any] = field(default_factory=dict)
    family: str = "sam1"

    @property
    def long_side(self) -> int:
        if self.family == "sam2":
            return int(self.model.image_size)
        return int(self.model.image_encoder.img_size)

    @property
    def mask_input_size(self) -> tuple[int, int]:
        if self.family == "sam2":
            return tuple(int(s) for s in self.model.sam_prompt_encoder.mask_input_size)
        return tuple(int(s) for s in self.model.prompt_encoder.mask_input_size)
