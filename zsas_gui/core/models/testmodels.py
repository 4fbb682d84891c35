"""Tiny RANDOM-WEIGHT models for tests and demos of the plumbing (never for real results).

Built from the real open_clip and segment_anything classes, saved as checkpoint files, and
loaded back through :mod:`.loading` exactly like real checkpoints:

    DIR/tiny-clip/  open_clip_config.json, open_clip_model.safetensors, zsas_model.json
    DIR/tiny-sam/   model.pth (a plain state dict), zsas_model.json
    DIR/tiny-sam2/  model.pt ({"model": state dict}, as SAM 2 ships), zsas_model.json (+ its config)
    DIR/tiny-sam-hq/ model.pth (an HQ-SAM state dict), zsas_model.json

Their outputs are deterministic (fixed seed) but meaningless: random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io.atomic import atomic_write_json

TINY_CLIP_CFG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 112, "layers": 3, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}

TINY_SAM_ARCH = dict(embed_dim=32, depth=2, num_heads=2, patch=16, img_size=256,
                     global_attn_indexes=[1], window_size=4, prompt_dim=32, mask_in_chans=16,
                     decoder_depth=2, decoder_mlp_dim=64, decoder_num_heads=2, iou_hidden=32)

NOTE = "RANDOM WEIGHTS: a tiny test model built by `zsas models make-test-models`; results are meaningless."


def make_test_models(folder: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``folder/tiny-clip``, ``folder/tiny-sam`` and, when their packages are installed,
    ``folder/tiny-sam2`` and ``folder/tiny-sam-hq``; return the first two paths."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from .loading import build_sam_from_arch

    folder = Path(folder)
    clip_dir, sam_dir = folder / "tiny-clip", folder / "tiny-sam"
    clip_dir.mkdir(parents=True, exist_ok=True)
    sam_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    cfg = json.loads(json.dumps(TINY_CLIP_CFG))
    quick = cfg.pop("quick_gelu")
    clip = open_clip.CLIP(**cfg, quick_gelu=quick)
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()},
              str(clip_dir / "open_clip_model.safetensors"))
    atomic_write_json(clip_dir / "open_clip_config.json", {
        "model_cfg": TINY_CLIP_CFG,
        "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN),
                           "std": list(open_clip.OPENAI_DATASET_STD)}})
    atomic_write_json(clip_dir / "zsas_model.json", {
        "kind": "clip", "name": "tiny-clip", "random_test_model": True,
        "image_size": TINY_CLIP_CFG["vision_cfg"]["image_size"], "note": NOTE})

    torch.manual_seed(seed + 1)
    sam = build_sam_from_arch(TINY_SAM_ARCH)
    torch.save(sam.state_dict(), sam_dir / "model.pth")
    atomic_write_json(sam_dir / "zsas_model.json", {
        "kind": "sam", "name": "tiny-sam", "random_test_model": True, "weights": "model.pth",
        "decoder_num_heads": TINY_SAM_ARCH["decoder_num_heads"], "note": NOTE})
    from .testmodels_sam import make_tiny_sam2, make_tiny_sam_hq, packages_missing

    if "sam2" not in packages_missing():
        make_tiny_sam2(folder / "tiny-sam2", seed + 2)
    if "segment_anything_hq" not in packages_missing():
        make_tiny_sam_hq(folder / "tiny-sam-hq", seed + 3)
    return clip_dir, sam_dir
