"""Half-precision wrapper for SAM's image encoder (imported only when torch is in use)."""

from __future__ import annotations

import torch


class HalfPrecisionEncoder(torch.nn.Module):
    """Runs an image encoder in ``dtype`` (fp16 on CUDA) but takes and returns fp32 tensors,
    so ``SamPredictor`` and the fp32 prompt encoder / mask decoder work unchanged.

    Exposes ``img_size`` like ``segment_anything.modeling.ImageEncoderViT``.
    """

    def __init__(self, encoder: torch.nn.Module, dtype: torch.dtype):
        super().__init__()
        self.encoder = encoder.to(dtype)
        self.dtype = dtype
        self.img_size = encoder.img_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.to(self.dtype)).float()
