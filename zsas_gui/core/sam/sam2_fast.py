"""SAM 2's decoder on the restructured core (:class:`.decoder_core.DecoderCore`), in torch.

``SAM2ImagePredictor.predict`` per call: the prompt encoder, SAM 2's mask decoder (a two-way
transformer over the 64x64 embedding, the upscaling with the two high-resolution maps), the
upsampling of every candidate to the image, and the low-res logits clamped to [-32, 32]. Here
the prompt encoder, the candidate choice (``multimask``: tokens 1-3; else token 0 unless it is
unstable, ``MaskDecoder._dynamic_multimask_via_stability``) and the upsampling
(``SAM2Transforms.postprocess_masks``) are the package's own; the mask decoder runs on
``DecoderCore`` with the per-image work (image-side projections, the high-resolution maps in
the products' row order) done once per embedding, and :meth:`Sam2FastDecoder.decode_best`
upsamples only the candidate the cascade keeps. Same maths, float rounding apart (tests compare
the cascade's masks with the package's predictor).
"""

from __future__ import annotations

import numpy as np


def make_sam2_core(model):
    """DecoderCore for a SAM2Base, or None when its decoder has another structure (or has no
    high-resolution maps): the caller then runs the package's predictor."""
    from .decoder_core import DecoderCore

    if not getattr(model.sam_mask_decoder, "use_high_res_features", False):
        return None
    try:
        return DecoderCore(model).eval()
    except (ValueError, AttributeError):
        return None


class Sam2FastDecoder:
    """``method.refine.MaskDecoder`` of SAM 2 on one embedding (``SamEmbedding`` with the extras
    ``high_res_0`` (1, C/8, 4g, 4g) and ``high_res_1`` (1, C/4, 2g, 2g))."""

    def __init__(self, core, predictor, emb):
        import torch

        self.core, self.predictor, self.emb = core, predictor, emb
        with torch.inference_mode():
            self.per_image = core.per_image(emb.features)
            self.high_res = core.high_res_rows(emb.extras["high_res_0"], emb.extras["high_res_1"])

    def _low(self, points, labels, box, mask_input, multimask: bool):
        """(low (C, m, m) torch logits before the clamp, ious (C,) float32 numpy) as
        ``SAM2ImagePredictor._predict`` chooses them."""
        import torch

        p, hw = self.predictor, tuple(self.emb.original_size)
        model, t = p.model, p._transforms
        dev = self.emb.features.device
        coords = labs = None
        if points is not None:
            coords = t.transform_coords(torch.as_tensor(points, dtype=torch.float, device=dev), normalize=True,
                                        orig_hw=hw)[None]
            labs = torch.as_tensor(labels, dtype=torch.int, device=dev)[None]
        if box is not None:      # a box enters as two corner points labelled 2 and 3, before the points
            corners = t.transform_boxes(torch.as_tensor(box, dtype=torch.float, device=dev), normalize=True,
                                        orig_hw=hw).reshape(-1, 2, 2)
            corner_labels = torch.tensor([[2, 3]], dtype=torch.int, device=dev)
            coords = corners if coords is None else torch.cat([corners, coords], dim=1)
            labs = corner_labels if labs is None else torch.cat([corner_labels, labs], dim=1)
        sparse, _ = model.sam_prompt_encoder(points=None if coords is None else (coords, labs), boxes=None,
                                             masks=None)
        m = None if mask_input is None else torch.as_tensor(np.asarray(mask_input, np.float32), device=dev)[None, None]
        low, iou = self.core.decode(sparse[0], m, self.per_image, self.high_res)
        dec = model.sam_mask_decoder
        if multimask:
            low, iou = low[1:], iou[1:]
        elif dec.dynamic_multimask_via_stability:
            low, iou = dec._dynamic_multimask_via_stability(low[None], iou[None])
            low, iou = low[0], iou[0]
        else:
            low, iou = low[:1], iou[:1]
        return low, iou.float().cpu().numpy()

    def _upsample(self, low):
        """(C, m, m) logits -> (C, H, W) bool masks, the package's postprocessing."""
        p = self.predictor
        return (p._transforms.postprocess_masks(low[None], tuple(self.emb.original_size))[0]
                > p.mask_threshold).cpu().numpy()

    def decode(self, points, labels, box, mask_input, multimask):
        """As ``MaskDecoder.decode``: masks (C, H, W) bool, ious (C,), low-res logits (C, m, m)."""
        import torch

        with torch.inference_mode():
            low, iou = self._low(points, labels, box, mask_input, multimask)
            return self._upsample(low), iou, torch.clamp(low, -32.0, 32.0).float().cpu().numpy()

    def decode_best(self, points, labels, box, mask_input, multimask):
        """As ``method.refine.best_candidate``, upsampling only that candidate."""
        import torch

        with torch.inference_mode():
            low, iou = self._low(points, labels, box, mask_input, multimask)
            best = int(np.argmax(iou))
            return (self._upsample(low[best:best + 1])[0], iou,
                    torch.clamp(low[best], -32.0, 32.0).float().cpu().numpy(), best)
