"""Patch-feature backbones for the folder maps (ALGORITHM.md §1b).

- :class:`ClipTowerBackbone`: the loaded CLIP image tower's plain stream (the model's own
  forward, no surgery), tokens of several blocks; no new download.
- :class:`TimmBackbone`: any timm model (``--backbone timm:ARCH``) with a local timm state dict
  (``.safetensors``, or ``.pth`` read with ``weights_only``), the registry's downloaded file for
  the registry backbones (``dinov2_vits14``, ``dinov2_vitb14``, ``wide_resnet50_2``: their timm
  names work too, see ``models/registry_backbones.py``), or a seeded random init for
  measurements (``weights="random"``). CNN stages or ViT blocks through timm's
  ``forward_intermediates``; every depth is resized to the finest depth's grid.

Both return :class:`.patch_features.PatchFeatures` (float16 (C, Gh, Gw) per depth). Frames: the
image is stretched to the backbone's S x S input square; the patch grid covers that square.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import CheckpointError, ZsasError
from ..models.bundles import ClipBundle
from .anomaly_map import check_rgb, preprocess
from .clip_surgery import resolve_depths
from .patch_features import PatchFeatures

#: Input side of a timm backbone when its config does not fix one (the issue's 256 px).
DEFAULT_TIMM_SIZE = 256
#: ViTs trained at a large fixed size (DINOv2: 518) run at this side instead (32 x 32 patches of 14).
DEFAULT_VIT_SIZE = 448
RANDOM_WEIGHTS = "random"
#: Default CNN stages: the last two (strides 16 and 32). Measured on the real magnetic-tile
#: defects, EfficientNet-Lite0 at 256 px (docs/results.md): stages 3+4 gave the mutual map pixel
#: AUROC 0.74 / AP 0.34, stages 2+3 (PatchCore's layer2+3 analogue) 0.67 / 0.29, at 1/16 the cost.
CNN_DEPTHS = (3, 4)
#: The short side of an aspect-keeping input is a multiple of this (the coarsest CNN stride).
ASPECT_STEP = 32


class ClipTowerBackbone:
    """Plain-stream patch tokens of an open_clip ViT at ``depths`` (default: 4 evenly spaced
    blocks ending at the last), CLS token dropped, before ``ln_post``."""

    def __init__(self, clip: ClipBundle, depths: Sequence[int] | None = None):
        visual = clip.model.visual
        if not hasattr(visual, "transformer") or not hasattr(visual, "_embeds"):
            raise ZsasError(f"the CLIP model {clip.model_id} has no ViT image tower to take patch "
                            "features from; use --backbone timm:ARCH")
        self.clip = clip
        self.depths = resolve_depths(depths, len(visual.transformer.resblocks))
        self.grid = tuple(int(g) for g in visual.grid_size)
        self.image_size = clip.image_size
        self.model_id = f"clip:{clip.model_id}|d{'-'.join(map(str, self.depths))}"

    def info(self) -> dict[str, Any]:
        return {"backbone": f"clip:{self.clip.model_id}", "image_size": self.image_size,
                "depths": list(self.depths), "grid": list(self.grid)}

    def extract(self, image: np.ndarray) -> PatchFeatures:
        """``image``: (H, W, 3) uint8 RGB -> :class:`PatchFeatures` on the G x G token grid."""
        hw = check_rgb(image)
        c = self.clip
        visual = c.model.visual
        batch_first = bool(getattr(visual.transformer, "batch_first", True))
        pixels = preprocess(image, c.image_size, c.mean, c.std, c.device, c.dtype)
        gh, gw = self.grid
        taken = []
        with torch.inference_mode():
            x = visual._embeds(pixels)                       # (1, 1 + G*G, width)
            for i, blk in enumerate(visual.transformer.resblocks):
                x = blk(x) if batch_first else blk(x.transpose(0, 1)).transpose(0, 1)
                if i in self.depths:
                    tokens = x[0, 1:].float().cpu()          # (G*G, width), row-major
                    taken.append(tokens.T.reshape(-1, gh, gw).to(torch.float16).clone())
                if i >= self.depths[-1]:
                    break
        return PatchFeatures(layers=tuple(taken), grid=(gh, gw), hw=hw, image_size=c.image_size)


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256 (backbone ids, so caches follow the weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _is_vit(model: Any) -> bool:
    return hasattr(model, "patch_embed") and hasattr(model, "blocks")


class TimmBackbone:
    """A timm model's intermediate feature maps as patch features.

    ``arch``: a timm model name (``efficientnet_lite0``, ``vit_small_patch14_dinov2``,
    ``wide_resnet50_2``); ``weights``: a timm state dict file, or ``"random"`` (seeded random
    init, for baselines); ``image_size``: input side (default 256, ViTs with a fixed large input
    448); ``depths``: ``forward_intermediates`` indices (default: CNN stages :data:`CNN_DEPTHS`;
    ViT: 4 evenly spaced blocks ending at the last);
    ``keep_aspect`` (CNNs only): the input keeps the image's aspect ratio, long side
    ``image_size``, the short side a multiple of :data:`ASPECT_STEP` (parts photographed at
    different shapes are not stretched differently before their textures are compared).
    """

    def __init__(self, arch: str, weights: str | Path, image_size: int | None = None,
                 depths: Sequence[int] | None = None, device: Any = "cpu", seed: int = 0,
                 keep_aspect: bool = True):
        import timm

        if not timm.is_model(arch):
            raise ZsasError(f"timm has no model {arch!r}; `python -c \"import timm; "
                            f"print(timm.list_models('*{arch[:6]}*'))\"` lists similar names")
        random_init = str(weights) == RANDOM_WEIGHTS
        kwargs: dict[str, Any] = {}
        probe_cfg = timm.models.get_pretrained_cfg(arch) if hasattr(timm.models, "get_pretrained_cfg") else None
        fixed = bool(getattr(probe_cfg, "fixed_input_size", False))
        size = int(image_size or (DEFAULT_VIT_SIZE if fixed else DEFAULT_TIMM_SIZE))
        if fixed:
            kwargs["img_size"] = size
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = timm.create_model(arch, pretrained=None, **kwargs)   # never fetches
        if random_init:
            tag = f"random{seed}"
        else:
            path = Path(weights)
            if not path.is_file():
                raise CheckpointError(f"{path}: backbone weights not found (give a timm state dict "
                                      "as .safetensors or .pth)")
            _load_timm_weights(model, path)
            tag = file_digest(path)
        self.model = model.eval().to(device)
        self.device = device
        self.arch = arch
        self.image_size = size
        cfg = model.pretrained_cfg or {}
        self.mean = tuple(cfg.get("mean", (0.485, 0.456, 0.406)))
        self.std = tuple(cfg.get("std", (0.229, 0.224, 0.225)))
        if depths is None:
            depths = (resolve_depths(None, len(model.blocks)) if _is_vit(model) else CNN_DEPTHS)
        self.depths = tuple(int(d) for d in depths)
        self.weights_tag = tag
        self.keep_aspect = bool(keep_aspect) and not _is_vit(model)
        #: CNN stage activations are compared by raw Euclidean distance (PatchCore's measure; on
        #: the real magnetic-tile defects +0.08 pixel AUROC over cosine, docs/results.md, D39),
        #: ViT tokens by cosine (:func:`.patch_features.preferred_distance`).
        self.patch_distance = "cosine" if _is_vit(model) else "euclidean"
        self.model_id = (f"timm:{arch}@{size}{'a' if self.keep_aspect else ''}|{tag}"
                         f"|d{'-'.join(map(str, self.depths))}")

    def info(self) -> dict[str, Any]:
        return {"backbone": f"timm:{self.arch}", "weights": self.weights_tag,
                "image_size": self.image_size, "keep_aspect": self.keep_aspect,
                "patch_distance": self.patch_distance,
                "depths": list(self.depths)}

    def input_hw(self, hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the backbone input for an (H, W) image: S x S, or the aspect kept."""
        s = self.image_size
        if not self.keep_aspect:
            return s, s
        h, w = hw
        short = max(ASPECT_STEP, round(s * min(h, w) / max(h, w) / ASPECT_STEP) * ASPECT_STEP)
        return (s, short) if h >= w else (short, s)

    def forward_maps(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """(1, 3, S, S) -> one (1, C_d, h_d, w_d) map per depth (timm ``forward_intermediates``)."""
        return self.model.forward_intermediates(pixels, indices=list(self.depths),
                                                intermediates_only=True)

    def extract(self, image: np.ndarray) -> PatchFeatures:
        """``image``: (H, W, 3) uint8 RGB -> :class:`PatchFeatures` on the finest depth's grid."""
        hw = check_rgb(image)
        frame = self.input_hw(hw)
        if image.shape[:2] != frame:     # stretch to the frame, PIL bicubic as preprocess()
            image = np.asarray(Image.fromarray(image).resize(frame[::-1], Image.Resampling.BICUBIC))
        x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
        mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in (self.mean, self.std))
        pixels = ((x - mean) / std).to(self.device)
        with torch.inference_mode():
            maps = self.forward_maps(pixels)
            grid = max((tuple(m.shape[2:]) for m in maps), key=lambda g: g[0] * g[1])
            layers = []
            for m in maps:
                m = m.float()
                if tuple(m.shape[2:]) != grid:
                    m = F.interpolate(m, size=grid, mode="bilinear", align_corners=False)
                layers.append(m[0].cpu().to(torch.float16).clone())
        return PatchFeatures(layers=tuple(layers), grid=(int(grid[0]), int(grid[1])), hw=hw,
                             image_size=self.image_size, input_hw=frame)


#: Parameter names of classifier heads: a feature backbone needs none of them.
_HEAD_PREFIXES = ("classifier.", "fc.", "head.", "head_drop.", "conv_head.", "bn2.", "norm.",
                  "fc_norm.")


def _load_timm_weights(model: Any, path: Path) -> None:
    """Load a timm state dict into ``model``; a ViT's position embedding is resampled to the
    model's grid. Missing or unknown parameters outside the head are a clear error."""
    from ..models.loading import load_state_dict

    sd = load_state_dict(path)
    if _is_vit(model):
        from timm.models.vision_transformer import checkpoint_filter_fn
        sd = checkpoint_filter_fn(sd, model)
    try:
        result = model.load_state_dict(sd, strict=False)
    except RuntimeError as exc:              # same names, other shapes: another variant's weights
        raise CheckpointError(f"{path}: parameters of another shape than timm's "
                              f"{type(model).__name__} ({str(exc)[:300]}); give this model's own "
                              "state dict") from exc
    missing = [k for k in result.missing_keys if not k.startswith(_HEAD_PREFIXES)]
    unexpected = [k for k in result.unexpected_keys if not k.startswith(_HEAD_PREFIXES)]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: not a timm {type(model).__name__} state dict ({len(missing)} parameters "
            f"missing, e.g. {missing[:3]}; {len(unexpected)} unknown, e.g. {unexpected[:3]}); "
            "convert it to timm's parameter names first")


def parse_backbone(spec: str | None) -> tuple[str, str | None]:
    """``None``/``"clip"`` -> ("clip", None); ``"timm:ARCH"`` -> ("timm", ARCH); else a user error."""
    if spec in (None, "", "clip"):
        return "clip", None
    if spec.startswith("timm:") and len(spec) > 5:
        return "timm", spec[5:]
    raise ZsasError(f"--backbone {spec!r}: expected 'clip' or 'timm:ARCH' (e.g. timm:efficientnet_lite0)")


def load_backbone(spec: str | None, weights: str | Path | None, clip: ClipBundle | None,
                  device: Any = "cpu", image_size: int | None = None):
    """The backbone a ``--backbone``/``--backbone-weights`` pair names."""
    kind, arch = parse_backbone(spec)
    if kind == "clip":
        if weights:
            raise ZsasError("--backbone-weights needs --backbone timm:ARCH (the CLIP tower uses "
                            "the loaded CLIP model's weights)")
        if clip is None:
            raise ZsasError("the default backbone is the CLIP image tower: load a CLIP model or "
                            "give --backbone timm:ARCH")
        return ClipTowerBackbone(clip)
    from ..models.registry import known_names
    from ..models.registry_backbones import registry_backbone, timm_arch

    if not weights:   # a registry backbone's downloaded file (zsas models download NAME); never fetched here
        found = registry_backbone(arch)
        if found is None:
            raise ZsasError(f"--backbone timm:{arch} needs --backbone-weights FILE (a timm state dict, "
                            f".safetensors or .pth), or 'random' for an untrained baseline; registry "
                            f"backbones work without it once downloaded: {known_names('backbone')}")
        arch, weights = found
    return TimmBackbone(timm_arch(arch), weights, image_size=image_size, device=device)
