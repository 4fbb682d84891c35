"""SAM 2 / 2.1 behind the backend protocol: ``sam2``'s ``SAM2ImagePredictor``, state restored
from the cached embedding.

What differs from SAM 1 (and what the cascade never sees):

- the image is resized to the ``image_size`` square *without* keeping its aspect ratio, so the
  64x64 embedding and the 256x256 low-res logits cover the stretched image, not a padded
  square; ``predict`` maps points/boxes and upsamples masks itself;
- the decoder also reads two high-resolution feature maps (``high_res_feats``: (1, C/8, 256, 256)
  and (1, C/4, 128, 128)), cached as the embedding's extras;
- boxes enter the prompt encoder as two corner points (labels 2, 3), low-res logits come back
  clamped to [-32, 32], and a single-mask request falls back to the best of the three masks
  when the single one is unstable (``dynamic_multimask_via_stability``, on for image use).

The optional CUDA extension (``sam2._C``, built only with ``SAM2_BUILD_CUDA=1``) is used only
for hole filling in masks, which ``SAM2ImagePredictor`` does only with ``max_hole_area > 0``
(default 0, as here): without it nothing changes for the image predictor.
"""

from __future__ import annotations

import numpy as np

from .backends import CachedArrays, LastDecoder, PredictDecoder, SamEmbedding


def stretched_to_padded(features, hw: tuple[int, int], long_side: int) -> np.ndarray:
    """SAM 2's embedding of the stretched image -> the same grid over SAM's padded square.

    features: torch (1, C, g, g) over the image stretched to the square; hw: (H, W) of the
    image. Returns (C, g, g) float32: each cell of the padded square (long side resized to
    ``long_side``, padded bottom/right) sampled bilinearly at its centre; cells outside the
    image are zero."""
    import torch
    import torch.nn.functional as F

    from ..frames import sam_input_size

    g = int(features.shape[-1])
    nh, nw = sam_input_size(hw, long_side)
    centres = (torch.arange(g, dtype=torch.float32) + 0.5) * (long_side / g)   # padded-square px
    # in the stretched frame the image spans the whole square: x_s = x_padded * long_side / nw
    xs = centres / nw * 2.0 - 1.0
    ys = centres / nh * 2.0 - 1.0
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)[None]   # (1, g, g, 2) x, y
    with torch.inference_mode():
        out = F.grid_sample(features.float().cpu(), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        inside = ((grid[..., 0].abs() <= 1) & (grid[..., 1].abs() <= 1))[:, None]
        out = torch.where(inside, out, torch.zeros((), dtype=out.dtype))
    return out[0].numpy().astype(np.float32, copy=False)


def feature_sizes(image_size: int) -> list[tuple[int, int]]:
    """The (h, w) of SAM 2's three image feature maps (strides 4, 8, 16) for an ``image_size``
    input. ``SAM2ImagePredictor`` hard-codes them for 1024 px ([(256, 256), (128, 128), (64, 64)],
    what this returns for 1024); smaller models (the tiny test model: 256 px) need their own."""
    return [(image_size // s, image_size // s) for s in (4, 8, 16)]


class Sam2Backend(CachedArrays):
    """``SAM2ImagePredictor`` on a cached embedding. ``decoder="torch"``: its own ``predict`` (the
    reference path); otherwise the restructured decoder (:mod:`.sam2_fast`, torch; there is no
    onnxruntime graph for SAM 2), or ``predict`` when the decoder's structure is unexpected."""

    name = "sam2"
    EXTRAS = ("high_res_0", "high_res_1")

    def __init__(self, sam_bundle, decoder: str = "auto"):
        import warnings

        from sam2.sam2_image_predictor import SAM2ImagePredictor

        from .sam2_fast import Sam2FastDecoder, make_sam2_core

        self.sam = sam_bundle
        with warnings.catch_warnings():
            # SAM2Transforms scripts its resize with torch.jit.script, deprecated in recent torch
            warnings.simplefilter("ignore", FutureWarning)
            self.predictor = SAM2ImagePredictor(sam_bundle.model)
        self.predictor._bb_feat_sizes = feature_sizes(sam_bundle.long_side)
        self.core = None if decoder == "torch" else make_sam2_core(sam_bundle.model)
        self._fast = LastDecoder(lambda emb: Sam2FastDecoder(self.core, self.predictor, emb))

    @property
    def decoder_name(self) -> str:
        return "torch" if self.core is None else "fast"

    def encode(self, image: np.ndarray) -> SamEmbedding:
        import torch

        p = self.predictor
        with torch.inference_mode():
            p.set_image(np.ascontiguousarray(image))
        f = p._features
        return self.embedding(f["image_embed"], dict(zip(self.EXTRAS, f["high_res_feats"])),
                              tuple(int(s) for s in image.shape[:2]))

    def embedding(self, features, extras, hw: tuple[int, int]) -> SamEmbedding:
        side = self.sam.long_side
        return SamEmbedding(features, (side, side), tuple(hw), extras=dict(extras), frame="stretched",
                            long_side=side)

    def decoder(self, emb: SamEmbedding):
        if self.core is not None:
            return self._fast.get(emb)
        p = self.predictor
        p.reset_predictor()
        p._features = {"image_embed": emb.features, "high_res_feats": [emb.extras[k] for k in self.EXTRAS]}
        p._orig_hw = [tuple(emb.original_size)]
        p._is_image_set = True
        return PredictDecoder(p)
