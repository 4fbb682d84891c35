"""Tiny RANDOM-WEIGHT SAM 2.1 and HQ-SAM models for tests (see :mod:`.testmodels`).

Built from the real ``sam2`` / ``segment_anything_hq`` classes, saved like the released
checkpoints, loaded back through ``loading.load_sam`` (``--sam DIR/tiny-sam2``). The tiny SAM 2
takes 256-px inputs (64/32/16-cell feature maps; the backend tells ``SAM2ImagePredictor``, which
assumes 1024 px) and narrow layers; its config travels in the manifest (Hiera's heads and
windows are not in the tensors).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write_json

NOTE = "RANDOM WEIGHTS: a tiny test model built by `zsas models make-test-models`; results are meaningless."
#: HQ-SAM with SAM's tiny test sizes (``testmodels.TINY_SAM_ARCH``) and its HQ feature width
TINY_HQ_ARCH = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch": 16, "img_size": 256,
                "global_attn_indexes": [1], "window_size": 4, "prompt_dim": 32, "mask_in_chans": 16,
                "decoder_depth": 2, "decoder_mlp_dim": 64, "decoder_num_heads": 2, "iou_hidden": 32,
                "hq": True, "vit_dim": 32}


def packages_missing() -> set[str]:
    """The optional model packages that are not installed (``sam2``, ``segment_anything_hq``)."""
    return {n for n in ("sam2", "segment_anything_hq") if importlib.util.find_spec(n) is None}


def tiny_sam2_config() -> dict[str, Any]:
    """The ``model`` section of sam2's ``sam2.1_hiera_t.yaml`` shrunk to a few thousand weights
    per layer: Hiera width 8, blocks per stage 1, 1, 2, 1 (the global-attention block in the
    third stage, like the released models: a stage's first block pools and cannot be global);
    32-channel neck, decoder and memory."""
    from .sam2_loading import PACKAGE_CONFIGS, package_config_file

    cfg = package_config_file(PACKAGE_CONFIGS[(True, 96, (1, 2, 7, 2))])
    d, mem = 32, 16
    trunk = cfg["image_encoder"]["trunk"]
    trunk.update(embed_dim=8, num_heads=1, stages=[1, 1, 2, 1], global_att_blocks=[3],
                 window_pos_embed_bkg_spatial_size=[4, 4])
    neck = cfg["image_encoder"]["neck"]
    neck.update(d_model=d, backbone_channel_list=[64, 32, 16, 8])
    neck["position_encoding"]["num_pos_feats"] = d
    ma = cfg["memory_attention"]
    ma.update(d_model=d, num_layers=1)
    ma["layer"].update(d_model=d, dim_feedforward=64)
    ma["layer"]["self_attention"].update(embedding_dim=d)
    ma["layer"]["cross_attention"].update(embedding_dim=d, kv_in_dim=mem)
    me = cfg["memory_encoder"]
    me.update(out_dim=mem)
    me["position_encoding"]["num_pos_feats"] = mem
    me["mask_downsampler"]["embed_dim"] = d
    me["fuser"]["layer"]["dim"] = d
    me["fuser"]["num_layers"] = 1
    me["in_dim"] = d
    cfg["num_maskmem"] = 2
    cfg["image_size"] = 256           # 64/32/16-cell feature maps (sam2_backend.feature_sizes)
    return cfg


def make_tiny_sam2(folder: Path, seed: int) -> Path:
    """Write ``folder/model.pt`` + manifest; return ``folder``."""
    import torch

    from .sam2_loading import build_sam2_model

    folder.mkdir(parents=True, exist_ok=True)
    cfg = tiny_sam2_config()
    torch.manual_seed(seed)
    model = build_sam2_model(cfg)
    torch.save({"model": model.state_dict()}, folder / "model.pt")
    atomic_write_json(folder / "zsas_model.json", {
        "kind": "sam", "name": "tiny-sam2", "random_test_model": True, "weights": "model.pt",
        "sam2_config": cfg, "note": NOTE})
    return folder


def make_tiny_sam_hq(folder: Path, seed: int) -> Path:
    """Write ``folder/model.pth`` + manifest; return ``folder``."""
    import torch

    from .hq_loading import build_hq_from_arch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_hq_from_arch(TINY_HQ_ARCH)
    torch.save(model.state_dict(), folder / "model.pth")
    atomic_write_json(folder / "zsas_model.json", {
        "kind": "sam", "name": "tiny-sam-hq", "random_test_model": True, "weights": "model.pth",
        "decoder_num_heads": TINY_HQ_ARCH["decoder_num_heads"], "note": NOTE})
    return folder
