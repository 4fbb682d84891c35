"""HQ-SAM behind the backend protocol: ``segment_anything_hq``'s ``SamPredictor``.

Same frames as SAM 1 (long side resized, padded square). The HQ decoder also reads an early
encoder feature (``interm_features[0]``: (1, 64, 64, vit_dim), the output of the first global
attention block, or of TinyViT's second stage), cached as the embedding's extra ``interm``.

With ``multimask_output=True`` HQ-SAM's decoder already keeps only the best of SAM's three
masks (by predicted IoU) and adds the HQ token's mask to it, so every call returns one
candidate; the cascade's best-of-C choice is then that one.

Decoder paths (``decoder`` as for SAM 1; there is no onnxruntime graph for HQ-SAM):

- ``"torch"``: the package's ``SamPredictor.predict`` (the reference);
- anything else (``"auto"``, ``"fast"``, ``"onnx"``): :class:`HqDecoder`, the same calls with the
  decoder's per-image *HQ feature* computed once per embedding instead of on every call.
  ``MaskDecoderHQ.forward`` recomputes it each time from the image embedding and the early
  feature (four transposed convolutions up to 256x256, a third of a decoder call with ViT-B,
  docs/benchmarks.md); it depends on the image only.
"""

from __future__ import annotations

import numpy as np

from .backends import CachedArrays, LastDecoder, PredictDecoder, SamEmbedding


class HqBackend(CachedArrays):
    """HQ-SAM's ``SamPredictor`` on a cached embedding; ``decoder="torch"``: its own ``predict``."""

    name = "sam_hq"
    EXTRAS = ("interm",)

    def __init__(self, sam_bundle, decoder: str = "auto"):
        from ..models.hq_loading import hq_package

        self.sam = sam_bundle
        self.predictor = hq_package().SamPredictor(sam_bundle.model)
        dec = sam_bundle.model.mask_decoder
        self.fast = decoder != "torch" and all(hasattr(dec, a) for a in ("embedding_encoder", "compress_vit_feat",
                                                                        "predict_masks"))
        self._fast = LastDecoder(lambda emb: HqDecoder(self.predictor, emb))

    @property
    def decoder_name(self) -> str:
        return "fast" if self.fast else "torch"

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

    def decoder(self, emb: SamEmbedding):
        if self.fast:
            return self._fast.get(emb)
        p = self.predictor
        p.features, p.interm_features = emb.features, [emb.extras["interm"]]
        p.input_size, p.original_size = emb.input_size, emb.original_size
        p.is_image_set = True
        return PredictDecoder(p, hq_token_only=False)


class HqDecoder:
    """``SamPredictor.predict(..., hq_token_only=False)`` of segment_anything_hq on one embedding,
    with the per-image HQ feature ((1, C/8, 4g, 4g) float32, g = the embedding's grid) and the
    dense positional encoding computed once. Same operations in the same order as the package
    (``predict`` -> ``predict_torch`` -> ``MaskDecoderHQ.forward``), so the same numbers."""

    def __init__(self, predictor, emb: SamEmbedding):
        import torch

        self.predictor, self.emb = predictor, emb
        model = predictor.model
        dec = model.mask_decoder
        with torch.inference_mode():
            vit = emb.extras["interm"].permute(0, 3, 1, 2)            # (1, vit_dim, g, g)
            self.hq_features = dec.embedding_encoder(emb.features) + dec.compress_vit_feat(vit)
            self.image_pe = model.prompt_encoder.get_dense_pe()

    def decode(self, points, labels, box, mask_input, multimask):
        """As ``MaskDecoder.decode``: masks (1, H, W) bool, ious (1,), low-res logits (1, m, m)."""
        import torch

        p, emb = self.predictor, self.emb
        model = p.model
        dev = model.device
        pts = boxes = masks_in = None
        if points is not None:
            coords = torch.as_tensor(p.transform.apply_coords(points, emb.original_size), dtype=torch.float,
                                     device=dev)
            pts = (coords[None], torch.as_tensor(labels, dtype=torch.int, device=dev)[None])
        if box is not None:
            boxes = torch.as_tensor(p.transform.apply_boxes(box, emb.original_size), dtype=torch.float,
                                    device=dev)[None]
        if mask_input is not None:
            masks_in = torch.as_tensor(np.asarray(mask_input, np.float32), device=dev)[None, None]
        with torch.inference_mode():
            sparse, dense = model.prompt_encoder(points=pts, boxes=boxes, masks=masks_in)
            low, iou = self._masks(model.mask_decoder, sparse, dense, multimask)
            masks = model.postprocess_masks(low, emb.input_size, emb.original_size) > model.mask_threshold
        return (masks[0].cpu().numpy(), iou[0].float().cpu().numpy(), low[0].float().cpu().numpy())

    def _masks(self, dec, sparse, dense, multimask: bool):
        """``MaskDecoderHQ.forward`` after its HQ feature (hq_token_only=False): low-res logits
        (1, 1, m, m) = SAM's chosen mask + the HQ token's mask, and the chosen mask's IoU (1, 1)."""
        import torch

        masks, iou = dec.predict_masks(image_embeddings=self.emb.features, image_pe=self.image_pe,
                                       sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                       hq_features=self.hq_features)
        n = dec.num_mask_tokens                    # SAM's 4 mask tokens + the HQ token
        if multimask:                              # the best of SAM's three masks by predicted IoU
            iou, best = torch.max(iou[:, 1:n - 1], dim=1)
            iou = iou.unsqueeze(1)
            masks_sam = masks[:, 1:n - 1][torch.arange(masks.size(0)), best].unsqueeze(1)
        else:
            iou, masks_sam = iou[:, 0:1], masks[:, 0:1]
        return masks_sam + masks[:, n - 1:n], iou
