"""HQ-SAM checkpoints (``segment-anything-hq``): SAM's layout plus the HQ output token.

An HQ-SAM state dict is SAM's (ViT-B/L/H, or a TinyViT for ``vit_tiny``) with extra mask-decoder
tensors: ``hf_token``, ``hf_mlp``, ``compress_vit_feat``, ``embedding_encoder``,
``embedding_maskfeature``. The architecture is read from the tensor shapes exactly like SAM's
(:func:`.loading.sam_arch_from_state_dict`); ``vit_dim`` (the width of the early encoder
feature the HQ token fuses) from ``compress_vit_feat``. The model is built from
``segment_anything_hq``'s classes, whose encoders also return that early feature.
"""

from __future__ import annotations

from functools import partial
from typing import Any

HQ_KEY = "mask_decoder.hf_token.weight"
PIP_HINT = "pip install 'zsas-gui[hq]' (or: pip install segment-anything-hq)"


def is_hq(sd: dict[str, Any]) -> bool:
    """True for an HQ-SAM state dict."""
    return HQ_KEY in sd


def hq_arch(sd: dict[str, Any], sam_arch: dict[str, Any]) -> dict[str, Any]:
    """SAM's arch dict plus ``vit_dim`` and ``hq=True``."""
    return dict(sam_arch, hq=True, vit_dim=int(sd["mask_decoder.compress_vit_feat.0.weight"].shape[0]))


def hq_package():
    """The ``segment_anything_hq`` package (:class:`CheckpointError` naming it if missing)."""
    from .optional import import_model_package

    return import_model_package("segment_anything_hq", "an HQ-SAM checkpoint", PIP_HINT)


def build_hq_from_arch(a: dict[str, Any]):
    """An untrained ``segment_anything_hq`` ``Sam`` with a ``MaskDecoderHQ`` (the wiring of
    ``segment_anything_hq.build_sam``, sizes from ``a``)."""
    import torch

    m = hq_package().modeling
    emb = a["img_size"] // a["patch"]
    if a.get("encoder") == "tiny_vit":
        encoder = m.TinyViT(img_size=a["img_size"], in_chans=3, drop_rate=0.0, drop_path_rate=0.0,
                            use_checkpoint=False, layer_lr_decay=1.0, **a["tiny_vit"])
    else:
        encoder = m.ImageEncoderViT(
            depth=a["depth"], embed_dim=a["embed_dim"], img_size=a["img_size"], mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=a["num_heads"],
            patch_size=a["patch"], qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=tuple(a["global_attn_indexes"]), window_size=a["window_size"],
            out_chans=a["prompt_dim"])
    sam = m.Sam(
        image_encoder=encoder,
        prompt_encoder=m.PromptEncoder(
            embed_dim=a["prompt_dim"], image_embedding_size=(emb, emb),
            input_image_size=(a["img_size"], a["img_size"]), mask_in_chans=a["mask_in_chans"]),
        mask_decoder=m.MaskDecoderHQ(
            num_multimask_outputs=3,
            transformer=m.TwoWayTransformer(depth=a["decoder_depth"], embedding_dim=a["prompt_dim"],
                                            mlp_dim=a["decoder_mlp_dim"], num_heads=a["decoder_num_heads"]),
            transformer_dim=a["prompt_dim"], iou_head_depth=3, iou_head_hidden_dim=a["iou_hidden"],
            vit_dim=a["vit_dim"]),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()
