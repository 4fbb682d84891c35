"""MobileSAM: SAM's prompt encoder and mask decoder with a TinyViT image encoder.

The encoder class comes from the ``mobilesam-mirror`` package (import name ``mobile_sam``,
Apache-2.0, a packaging of the MobileSAM repository's code); everything else is
segment_anything's, so ``SamPredictor`` and the fast decoder work unchanged. The architecture is
read from the checkpoint's tensor shapes, like SAM's (docs/decisions.md, D4).

TinyViT's ``forward`` reshapes its output to a fixed 64x64 grid, so every TinyViT built here takes
1024-px inputs; its last stage keeps the resolution only when its width is 320, 448 or 576 (the
class's own rule), which test models must follow too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckpointError

#: key present only in TinyViT encoder state dicts (inside a SAM checkpoint)
TINY_VIT_KEY = "image_encoder.patch_embed.seq.0.c.weight"
IMG_SIZE, GRID = 1024, 64
PIP_HINT = "pip install mobilesam-mirror"


def is_tiny_vit(sd: dict[str, Any]) -> bool:
    """True for a SAM state dict whose image encoder is a TinyViT (MobileSAM)."""
    return TINY_VIT_KEY in sd


def tiny_vit_class():
    """MobileSAM's ``TinyViT`` class; :class:`CheckpointError` naming the package if missing."""
    from .optional import import_model_package

    return import_model_package("mobile_sam.modeling.tiny_vit_sam",
                                "a MobileSAM checkpoint (TinyViT encoder)", PIP_HINT).TinyViT


def tiny_vit_arch(sd: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """TinyViT constructor arguments read from tensor shapes of a SAM state dict."""
    p = "image_encoder."
    try:
        n_layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith(p + "layers."))
        if n_layers < 2:
            raise ValueError(f"{n_layers} stage")
        dims, depths, heads, windows = [], [], [], []
        for i in range(n_layers):
            lp = f"{p}layers.{i}.blocks."
            depths.append(1 + max(int(k[len(lp):].split(".")[0]) for k in sd if k.startswith(lp)))
            if i == 0:                                              # MBConv blocks
                w = sd[f"{lp}0.conv1.c.weight"]                      # (dim * expand, dim, 1, 1)
                dims.append(int(w.shape[1]))
                expand = int(w.shape[0]) / int(w.shape[1])
                heads.append(1)
                windows.append(7)
            else:                                                   # TinyViT blocks
                bias = sd[f"{lp}0.attn.attention_biases"]            # (heads, window**2)
                dims.append(int(sd[f"{lp}0.attn.norm.weight"].shape[0]))
                heads.append(int(bias.shape[0]))
                windows.append(int(round(int(bias.shape[1]) ** 0.5)))
                mlp_ratio = int(sd[f"{lp}0.mlp.fc1.weight"].shape[0]) / dims[-1]
                local_conv = int(sd[f"{lp}0.local_conv.c.weight"].shape[-1])
        head = sd.get(p + "head.weight")
    except (KeyError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{path}: TinyViT encoder of an unknown layout ({exc})") from exc
    if dims[-1] not in (320, 448, 576):
        raise CheckpointError(f"{path}: TinyViT encoder widths {dims} do not give SAM's 64x64 grid")
    return dict(embed_dims=dims, depths=depths, num_heads=heads, window_sizes=windows,
                mlp_ratio=mlp_ratio, mbconv_expand_ratio=expand, local_conv_size=local_conv,
                num_classes=int(head.shape[0]) if head is not None else 0)


def build_tiny_vit(arch: dict[str, Any]):
    """An untrained MobileSAM ``TinyViT`` encoder (1024-px input, 256 x 64 x 64 output)."""
    return tiny_vit_class()(img_size=IMG_SIZE, in_chans=3, drop_rate=0.0, drop_path_rate=0.0,
                            use_checkpoint=False, layer_lr_decay=1.0, **arch)


#: MobileSAM's own encoder (``build_sam_vit_t`` in its repository)
MOBILE_SAM_TINY_VIT = dict(embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2], num_heads=[2, 4, 5, 10],
                           window_sizes=[7, 7, 14, 7], mlp_ratio=4.0, mbconv_expand_ratio=4.0,
                           local_conv_size=3, num_classes=1000)
#: a tiny random TinyViT for tests (the last width must be 320: see the module docstring)
TINY_TINY_VIT = dict(embed_dims=[8, 16, 16, 320], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 4],
                     window_sizes=[7, 7, 14, 7], mlp_ratio=1.0, mbconv_expand_ratio=2.0,
                     local_conv_size=3, num_classes=0)


def mobile_sam_arch(tiny_vit: dict[str, Any] | None = None, **decoder: Any) -> dict[str, Any]:
    """A full arch dict for ``loading.build_sam_from_arch``: MobileSAM's (SAM's decoder) by
    default; ``decoder`` overrides decoder sizes (test models)."""
    a = dict(encoder="tiny_vit", tiny_vit=dict(tiny_vit or MOBILE_SAM_TINY_VIT), img_size=IMG_SIZE,
             patch=IMG_SIZE // GRID, prompt_dim=256, mask_in_chans=16, decoder_depth=2,
             decoder_mlp_dim=2048, decoder_num_heads=8, iou_hidden=256)
    a.update(decoder)
    return a
