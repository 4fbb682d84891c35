"""Load CLIP and SAM checkpoints into :class:`ClipBundle` / :class:`SamBundle`.

One code path for real checkpoints and the tiny random test models:
- CLIP: a folder with ``open_clip_config.json`` (+ ``open_clip_model.safetensors`` or a
  ``.bin``/``.pth`` state dict), or a single weights file whose architecture comes from the
  registry name it was resolved from;
- SAM: a ``.pth`` state dict (architecture read from the tensor shapes), or a folder with a
  ``zsas_model.json`` manifest naming its weights file.
Checkpoints are untrusted files: pickles are loaded with ``weights_only=True``; a config's
"pretrained" flags are forced off and the Hugging Face hub runs offline while a model is built
(:func:`offline`), so no config makes zsas use the network; a SAM whose tensors do not fill the
architecture they declare is refused before anything is allocated (:func:`check_sam_declared`).

Model ids (the key of every cache and the name in provenance) hold the checkpoint's content
digest (:mod:`.digest`) and the precision, e.g. ``"ViT-B-16-quickgelu@224/fp32/sha256:4b869929..."``;
the full digests are in ``bundle.info["sha256"]``. A CLIP's activation (QuickGELU or GELU) comes
from its open_clip config or its registry entry; a bare weights file with neither is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .bundles import ClipBundle, SamBundle
from .digest import file_sha256
from .offline import offline

log = logging.getLogger(__name__)

MANIFEST = "zsas_model.json"
CLIP_CONFIG = "open_clip_config.json"
CLIP_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.pth")


def _resolve(name_or_path: str | None, kind: str) -> tuple[Path, Any]:
    """(path, registry spec or None when a local path was given) for a model argument."""
    from . import registry

    path, spec = registry.resolve_model(name_or_path, kind)
    return Path(path), spec


def _read_manifest(folder: Path) -> dict[str, Any]:
    f = folder / MANIFEST
    if not f.exists():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{f}: unreadable model manifest ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{f}: the model manifest is not a JSON object")
    return data


def load_state_dict(path: Path) -> dict[str, Any]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file, never running pickled code."""
    import pickle
    import struct
    import zipfile

    import torch
    from safetensors import SafetensorError

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            sd = load_file(str(path), device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except SafetensorError as exc:     # truncated, or a header whose sizes lie about the data
        raise CheckpointError(f"{path}: not a readable .safetensors file ({str(exc)[:200]}); "
                              f"download it again") from exc
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint file not found") from exc
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load: the file contains objects other than tensors "
            f"(a pickle that could run code). Use an official checkpoint or a .safetensors file.") from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            KeyError, IndexError, struct.error) as exc:   # junk bytes: torch's legacy reader
        raise CheckpointError(f"{path}: cannot read checkpoint, the file is truncated or corrupt "
                              f"({type(exc).__name__}: {str(exc)[:200]}); download it again") from exc
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd:
        raise CheckpointError(f"{path}: not a model checkpoint (no tensors inside)")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _choose_dtype(device, precision: str):
    import torch

    from .device import half_precision_ok

    if precision == "fp32":
        return torch.float32
    if precision == "fp16":
        if device.type != "cuda":
            raise CheckpointError(f"half precision needs a CUDA device, not {device}")
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32 or fp16, got {precision!r}")
    return torch.float16 if half_precision_ok(device) else torch.float32


# ----------------------------------------------------------------------------- CLIP

def load_clip(name_or_path: str | None = None, device: str = "auto", precision: str = "auto",
              image_size: int | None = None) -> ClipBundle:
    """Load a CLIP model for the anomaly mapper.

    ``image_size`` overrides the input side (the positional embedding is interpolated); a name
    may carry one too: ``"ViT-B-16-quickgelu@224"`` (``image_size`` wins over it).
    """
    with offline():
        return _load_clip(name_or_path, device, precision, image_size)


def _load_clip(name_or_path, device, precision, image_size) -> ClipBundle:
    import open_clip

    from .device import pick_device

    name_or_path, named_size = split_clip_size(name_or_path)
    image_size = image_size or named_size
    path, spec = _resolve(name_or_path, "clip")
    dev = pick_device(device)
    info: dict[str, Any] = {"path": str(path)}
    if path.is_dir():
        cfg_file = path / CLIP_CONFIG
        if not cfg_file.exists():
            raise CheckpointError(f"{path}: folder has no {CLIP_CONFIG}; pass the weights file "
                                  f"with a registry name, or a folder made by open_clip/zsas")
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
            model_cfg = cfg["model_cfg"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise CheckpointError(f"{cfg_file}: not an open_clip config ({exc})") from exc
        weights = next((path / n for n in CLIP_WEIGHT_NAMES if (path / n).exists()), None)
        if weights is None:
            raise CheckpointError(f"{path}: no weights file (looked for {', '.join(CLIP_WEIGHT_NAMES)})")
        manifest = _read_manifest(path)
        arch = manifest.get("name", path.name)
        try:
            size = image_size or manifest.get("image_size") or model_cfg["vision_cfg"]["image_size"]
            model = _create_clip_from_cfg(arch, model_cfg, size)
        except (KeyError, TypeError, ValueError, AttributeError, AssertionError, RuntimeError,
                OSError, ImportError) as exc:   # OSError, ImportError: timm or the hub, offline
            raise CheckpointError(f"{cfg_file}: open_clip cannot build a model from this config "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from exc
        info.update(random_test_model=bool(manifest.get("random_test_model")), arch=arch,
                    config_sha256=hashlib.sha256(cfg_file.read_bytes()).hexdigest(),
                    quick_gelu=bool(model_cfg.get("quick_gelu", False)))
    else:
        if spec is None:
            spec = _clip_spec_of_bare_file(path)
        arch = spec.arch
        size = image_size or spec.image_size
        model = open_clip.create_model(arch, pretrained=None, force_image_size=size)
        weights = path
        info.update(arch=arch, registry_name=spec.name)
    try:
        open_clip.load_checkpoint(model, str(weights), strict=True, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{weights}: does not fit CLIP architecture {arch} ({type(exc).__name__}: "
            f"{str(exc)[:300]}). Is it a CLIP checkpoint of that model?") from exc
    dtype = _choose_dtype(dev, precision)
    model = model.to(device=dev, dtype=dtype).eval()
    info["sha256"] = file_sha256(weights)
    ident = info["sha256"][:16] + (f"+cfg{info['config_sha256'][:8]}" if "config_sha256" in info else "")
    model_id = f"{arch}@{size}/{precision_name(dtype)}/sha256:{ident}"
    if info.get("random_test_model"):
        model_id = f"random-test:{model_id}"
    tokenizer = open_clip.get_tokenizer("ViT-B-16")  # the CLIP BPE tokenizer (bundled, offline)
    return ClipBundle(model=model, tokenizer=tokenizer, model_id=model_id, image_size=int(size),
                      device=dev, dtype=dtype, info=info)


def split_clip_size(name_or_path: str | None) -> tuple[str | None, int | None]:
    """``"NAME@224"`` -> ``("NAME", 224)``; anything else (paths that exist, no ``@digits``
    suffix) is returned unchanged with ``None``."""
    if not name_or_path or Path(name_or_path).exists():
        return name_or_path, None
    base, sep, size = str(name_or_path).rpartition("@")
    if sep and base and size.isdigit() and int(size) > 0:
        return base, int(size)
    return name_or_path, None


def _create_clip_from_cfg(name: str, model_cfg: dict[str, Any], image_size: int):
    import copy

    import open_clip

    cfg = copy.deepcopy(model_cfg)
    cfg["vision_cfg"]["image_size"] = image_size
    for tower, flag in (("vision_cfg", "timm_model_pretrained"), ("text_cfg", "hf_model_pretrained")):
        if isinstance(cfg.get(tower), dict) and flag in cfg[tower]:
            cfg[tower][flag] = False           # weights come from the checkpoint, never downloaded
    quick_gelu = cfg.pop("quick_gelu", False)
    return open_clip.CLIP(**cfg, quick_gelu=quick_gelu)


def _clip_spec_of_bare_file(path: Path):
    """The registry CLIP spec of a bare weights file, found by its SHA-256 checksum.

    A bare file says nothing about its activation (OpenAI weights need QuickGELU, most others
    GELU): same shapes, different model. Only a file whose content is a registry checkpoint
    is accepted; anything else must come as a folder with its open_clip config."""
    from . import registry

    sd = load_state_dict(path)            # refuses pickles and unreadable files first
    if "visual.conv1.weight" not in sd:
        raise CheckpointError(f"{path}: not an open_clip CLIP checkpoint (no visual.conv1.weight)")
    digest = file_sha256(path)
    for spec in registry.list_specs("clip"):
        if spec.checksum_algo == "sha256" and spec.checksum == digest:
            return spec
    raise CheckpointError(
        f"{path}: a bare CLIP weights file that is no registry checkpoint (SHA-256 {digest[:16]}...) "
        f"does not say its activation (QuickGELU for OpenAI weights, GELU for most others), and "
        f"loading it with the wrong one gives wrong maps. Put it in a folder with open_clip's "
        f"{CLIP_CONFIG} (its model_cfg says quick_gelu) and pass the folder.")


def precision_name(dtype) -> str:
    """``torch.float32`` -> ``"fp32"`` (``"fp16"``, ``"bf16"``): the precision part of model ids."""
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(str(dtype).removeprefix("torch."),
                                                                          str(dtype))


# ----------------------------------------------------------------------------- SAM

def load_sam(name_or_path: str | None = None, device: str = "auto", precision: str = "auto") -> SamBundle:
    """Load a SAM model; its architecture is read from the checkpoint's tensor shapes.

    ``precision="auto"`` runs the image encoder in fp16 on CUDA (``HalfPrecisionEncoder``);
    the decoder always runs in fp32."""
    with offline():
        return _load_sam(name_or_path, device, precision)


def _load_sam(name_or_path, device, precision) -> SamBundle:
    import torch

    from .device import pick_device

    path, spec = _resolve(name_or_path, "sam")
    dev = pick_device(device)
    manifest: dict[str, Any] = {}
    weights = path
    if path.is_dir():
        manifest = _read_manifest(path)
        if "weights" not in manifest:
            raise CheckpointError(f"{path}: folder has no {MANIFEST} naming a SAM weights file")
        name = manifest["weights"]
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise CheckpointError(f"{path / MANIFEST}: 'weights' must name a file in {path}, got {name!r}")
        weights = path / name
    heads = manifest.get("decoder_num_heads", 8)
    if type(heads) is not int or heads < 1:
        raise CheckpointError(f"{path / MANIFEST}: 'decoder_num_heads' must be a positive integer, got {heads!r}")
    sd = load_state_dict(weights)
    try:   # any failure past here means the tensors do not describe a SAM this code can build
        from .sam_families import build_sam_checkpoint
        family, arch, model = build_sam_checkpoint(sd, weights, heads, manifest)
    except CheckpointError:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, AssertionError, IndexError,
            ArithmeticError) as exc:
        raise CheckpointError(f"{weights}: does not fit the SAM architecture read from it "
                              f"({type(exc).__name__}: {str(exc)[:300]})") from exc
    # SAM 2 and HQ-SAM run in fp32 (their encoders return more than one tensor)
    dtype = _choose_dtype(dev, precision) if family == "sam1" else torch.float32
    model = model.to(device=dev).eval()
    if dtype != torch.float32:
        # only the heavy image encoder runs in half precision; prompt encoder and mask decoder
        # stay fp32 (SamPredictor feeds them fp32 points, boxes and mask logits)
        from .half import HalfPrecisionEncoder
        model.image_encoder = HalfPrecisionEncoder(model.image_encoder, dtype)
    name = manifest.get("name") or (spec.name if spec else weights.stem)
    digest = file_sha256(weights)
    prefix = "random-test:" if manifest.get("random_test_model") else "sam:"
    model_id = f"{prefix}{name}/{precision_name(dtype)}/h{heads}/sha256:{digest[:16]}"
    info = {"path": str(weights), "arch": arch, "random_test_model": bool(manifest.get("random_test_model")),
            "sha256": digest}
    return SamBundle(model=model, model_id=model_id, device=dev, dtype=dtype, info=info, family=family)


def sam_arch_from_state_dict(sd: dict[str, Any], path: Path, decoder_heads: int = 8) -> dict[str, Any]:
    """Read SAM's builder arguments from tensor shapes (works for vit_b/l/h, MobileSAM's TinyViT
    encoder and test models)."""
    from .mobile_sam import is_tiny_vit, mobile_sam_arch, tiny_vit_arch

    try:
        if is_tiny_vit(sd):
            patch_w = pos = None
        else:
            patch_w = sd["image_encoder.patch_embed.proj.weight"]  # (C, 3, p, p)
            pos = sd["image_encoder.pos_embed"]                     # (1, g, g, C)
        prompt_dim = int(sd["prompt_encoder.point_embeddings.0.weight"].shape[1])
        mask_in = int(sd["prompt_encoder.mask_downscaling.3.weight"].shape[0])
        mlp_dim = int(sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0])
        iou_hidden = int(sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0])
    except KeyError as exc:
        raise CheckpointError(f"{path}: not a SAM checkpoint (missing tensor {exc.args[0]}); "
                              f"is this a CLIP or other model file?") from exc
    decoder_depth = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("mask_decoder.transformer.layers."))
    decoder = dict(prompt_dim=prompt_dim, mask_in_chans=mask_in, decoder_depth=decoder_depth,
                   decoder_mlp_dim=mlp_dim, decoder_num_heads=int(decoder_heads), iou_hidden=iou_hidden)
    if patch_w is None:
        return mobile_sam_arch(tiny_vit_arch(sd, path), **decoder)
    embed_dim, patch = int(patch_w.shape[0]), int(patch_w.shape[-1])
    grid = int(pos.shape[1])
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("image_encoder.blocks."))
    head_dim = int(sd["image_encoder.blocks.0.attn.rel_pos_h"].shape[1])
    global_idx, window = [], None
    for i in range(depth):
        n = int(sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0])
        if n == 2 * grid - 1:
            global_idx.append(i)
        else:
            window = (n + 1) // 2
    return dict(embed_dim=embed_dim, depth=depth, num_heads=embed_dim // head_dim, patch=patch,
                img_size=grid * patch, global_attn_indexes=global_idx, window_size=window or 14, **decoder)


def check_sam_declared(arch: dict[str, Any], sd: dict[str, Any], path: Path) -> None:
    """Refuse, before building, a SAM whose tensors do not fill the architecture their shapes
    declare (a 557 KB file declaring a 4096-wide, 200-block encoder would make the builder
    allocate gigabytes): the tensors' bytes must fit in the file (no views expanded from a few
    bytes), and the tensor names and shapes must be those of the declared model, built without
    memory on PyTorch's ``meta`` device."""
    import torch

    claimed = sum(t.numel() * t.element_size() for t in sd.values() if isinstance(t, torch.Tensor))
    size = path.stat().st_size
    if claimed > 2 * size + (1 << 20):
        raise CheckpointError(f"{path}: its tensors claim {claimed / 1e6:.0f} MB but the file holds "
                              f"{size / 1e6:.1f} MB (views of a few bytes): not a real SAM checkpoint")
    blocks = {k.split(".")[2] for k in sd if k.startswith("image_encoder.blocks.")}
    if arch.get("encoder") != "tiny_vit" and len(blocks) != arch["depth"]:
        raise CheckpointError(f"{path}: declares {arch['depth']} encoder blocks but holds tensors of "
                              f"{len(blocks)}: not a whole SAM checkpoint")
    try:
        with torch.device("meta"):
            expected = build_sam_from_arch(arch).state_dict()
    except RuntimeError:        # a builder that needs real values (TinyViT's .item()): the
        return                  # strict load after the real build checks the names and shapes
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    wrong = [k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        first = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                 else f"{wrong[0]} is {tuple(sd[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}")
        raise CheckpointError(f"{path}: does not fit the SAM architecture its shapes declare "
                              f"({len(missing)} missing, {len(extra)} unexpected, {len(wrong)} mis-shaped "
                              f"tensors; {first}); is it a SAM checkpoint?")


def build_sam_from_arch(a: dict[str, Any]):
    """Build an untrained ``segment_anything.modeling.Sam`` from :func:`sam_arch_from_state_dict`
    arguments (the same classes and wiring as ``segment_anything.build_sam._build_sam``)."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    emb = a["img_size"] // a["patch"]
    if a.get("encoder") == "tiny_vit":                       # MobileSAM
        from .mobile_sam import build_tiny_vit
        encoder = build_tiny_vit(a["tiny_vit"])
    else:
        encoder = ImageEncoderViT(
            depth=a["depth"], embed_dim=a["embed_dim"], img_size=a["img_size"], mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=a["num_heads"],
            patch_size=a["patch"], qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=tuple(a["global_attn_indexes"]), window_size=a["window_size"],
            out_chans=a["prompt_dim"])
    sam = Sam(
        image_encoder=encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=a["prompt_dim"], image_embedding_size=(emb, emb),
            input_image_size=(a["img_size"], a["img_size"]), mask_in_chans=a["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=a["decoder_depth"], embedding_dim=a["prompt_dim"],
                                          mlp_dim=a["decoder_mlp_dim"], num_heads=a["decoder_num_heads"]),
            transformer_dim=a["prompt_dim"], iou_head_depth=3, iou_head_hidden_dim=a["iou_hidden"]),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()

