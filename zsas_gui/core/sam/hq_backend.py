"""HQ-SAM behind the backend protocol: ``segment_anything_hq``'s ``SamPredictor``.

Same frames as SAM 1 (long side resized, padded square). The HQ decoder also reads an early
encoder feature (``interm_features[0]``: (1, 64, 64, vit_dim), the output of the first global
attention block, or of TinyViT's second stage), cached as the embedding's extra ``interm``.

With ``multimask_output=True`` HQ-SAM's decoder already keeps only the best of SAM's three
masks (by predicted IoU) and adds the HQ token's mask to it, so every call returns one
candidate; the cascade's best-of-C choice is then that one.
"""

from __future__ import annotations

import numpy as np

from .backends import CachedArrays, PredictDecoder, SamEmbedding


class HqBackend(CachedArrays):
    """HQ-SAM's ``SamPredictor`` on a cached embedding (its own ``predict``: the reference)."""

    name = "sam_hq"
    decoder_name = "torch"
    EXTRAS = ("interm",)

    def __init__(self, sam_bundle):
        from ..models.hq_loading import hq_package

        self.sam = sam_bundle
        self.predictor = hq_package().SamPredictor(sam_bundle.model)

    def encode(self, image: np.ndarray) -> SamEmbedding:
        import torch

        p = self.predictor
        with torch.inference_mode():
            p.set_image(image)
        return self.embedding(p.features, {"interm": p.interm_features[0]}, tuple(p.original_size))

    def embedding(self, features, extras, hw: tuple[int, int]) -> SamEmbedding:
        from ..frames import sam_input_size

        return SamEmbedding(features, sam_input_size(hw, self.sam.long_side), tuple(hw), extras=dict(extras),
                            long_side=self.sam.long_side)

    def decoder(self, emb: SamEmbedding) -> PredictDecoder:
        p = self.predictor
        p.features, p.interm_features = emb.features, [emb.extras["interm"]]
        p.input_size, p.original_size = emb.input_size, emb.original_size
        p.is_image_set = True
        return PredictDecoder(p, hq_token_only=False)
