"""Helpers shared by the benchmark scripts: random-weight full-size models, timing, test image.

Benchmarks print ``name: value`` lines. Models are built from the real architectures with
random weights (pretrained weights cannot be downloaded here); timings are real.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def random_clip_bundle(arch: str = "ViT-B-16-quickgelu", image_size: int = 448):
    """A full-size open_clip model with random weights, wrapped like a loaded checkpoint."""
    import open_clip
    import torch

    from zsas_gui.core.models.bundles import ClipBundle

    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None, force_image_size=image_size).eval()
    return ClipBundle(model=model, tokenizer=open_clip.get_tokenizer("ViT-B-16"),
                      model_id=f"random:{arch}@{image_size}", image_size=image_size,
                      device=torch.device("cpu"), dtype=torch.float32,
                      info={"random_test_model": True, "arch": arch})


def random_sam_bundle(kind: str = "vit_b"):
    """A full-size SAM with random weights."""
    import torch
    from segment_anything import sam_model_registry

    from zsas_gui.core.models.bundles import SamBundle

    torch.manual_seed(0)
    model = sam_model_registry[kind](checkpoint=None).eval()
    return SamBundle(model=model, model_id=f"random:sam_{kind}", device=torch.device("cpu"),
                     dtype=torch.float32, info={"random_test_model": True})


def preset_bundles(preset, device: str = "cpu"):
    """Random-weight CLIP and SAM of the preset's architectures (no checkpoint files needed)."""
    import open_clip
    import torch

    from zsas_gui.core.models.bundles import ClipBundle, SamBundle
    from zsas_gui.core.models.loading import build_sam_from_arch
    from zsas_gui.core.models.mobile_sam import mobile_sam_arch
    from zsas_gui.core.models.registry import get_spec

    dev = torch.device(device)
    torch.manual_seed(0)
    clip_spec, sam_spec = get_spec(preset.clip, "clip"), get_spec(preset.sam, "sam")
    clip = open_clip.create_model(clip_spec.arch, pretrained=None, force_image_size=preset.clip_size)
    clip_b = ClipBundle(model=clip.to(dev).eval(), tokenizer=open_clip.get_tokenizer("ViT-B-16"),
                        model_id=f"random:{clip_spec.arch}@{preset.clip_size}", image_size=preset.clip_size,
                        device=dev, dtype=torch.float32, info={"random_test_model": True})
    if sam_spec.arch == "vit_t":
        sam = build_sam_from_arch(mobile_sam_arch())
    else:
        from segment_anything import sam_model_registry
        sam = sam_model_registry[sam_spec.arch](checkpoint=None)
    sam_b = SamBundle(model=sam.to(dev).eval(), model_id=f"random:{sam_spec.name}", device=dev,
                      dtype=torch.float32, info={"random_test_model": True})
    return clip_b, sam_b


def test_image(hw=(768, 1024)) -> tuple[np.ndarray, str]:
    """The carpet demo image resized to ``hw`` when shared data is present, else a synthetic one."""
    import cv2

    from zsas_gui.core.io.imageio import load_image

    carpet = SHARED / "demo" / "carpet.png"
    if carpet.exists():
        img = load_image(carpet)
        return np.ascontiguousarray(cv2.resize(img, (hw[1], hw[0]))), f"{carpet.name} resized to {hw[1]}x{hw[0]}"
    rng = np.random.default_rng(0)
    img = rng.integers(80, 120, (*hw, 3), dtype=np.uint8)
    img[300:340, 500:560] = 230
    return img, f"synthetic {hw[1]}x{hw[0]}"


def median_ms(fn, repeats: int, warmup: int = 1, clock=time.perf_counter) -> float:
    """Median wall time of ``fn()`` in milliseconds (``clock=time.process_time``: CPU time)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    return statistics.median(times)


def emit(name: str, value) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    print(f"{name}: {value}", flush=True)
