"""SAM 2 / SAM 2.1 checkpoints: recognise them, pick their architecture, build the model.

A SAM 2 checkpoint (``sam2.1_hiera_tiny.pt`` ...) is ``{"model": state_dict}`` with keys under
``image_encoder.trunk.`` (the Hiera backbone), ``sam_prompt_encoder.``, ``sam_mask_decoder.``
and the video-only memory modules. Two things a config holds are not in the tensors (the Hiera
heads and attention windows), so the architecture is read from the checkpoint like this:

- the Hiera width (``trunk.patch_embed.proj.weight``), its blocks per stage (a stage starts at
  every block with a ``proj`` layer), and whether it is SAM 2.1 (``no_obj_embed_spatial``) pick
  one of the configs the ``sam2`` package ships (``configs/sam2.1/*.yaml``, ``configs/sam2/*``);
- a folder with a ``zsas_model.json`` may carry the config itself (``"sam2_config"``: the
  ``model`` section of such a YAML as JSON): the tiny random test models do.

The model is built with the ``sam2`` package's own classes (hydra's ``instantiate`` on the
config, as ``sam2.build_sam.build_sam2`` does, with the same image-predictor overrides).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckpointError

TRUNK_KEY = "image_encoder.trunk.patch_embed.proj.weight"
PIP_HINT = "pip install 'zsas-gui[sam2]' (or: SAM2_BUILD_CUDA=0 pip install sam2)"
#: what ``build_sam2(..., apply_postprocessing=True)`` adds for image prediction
POSTPROCESSING = {"dynamic_multimask_via_stability": True,
                  "dynamic_multimask_stability_delta": 0.05,
                  "dynamic_multimask_stability_thresh": 0.98}
#: (SAM 2.1?, Hiera width, blocks per stage) -> config file inside the sam2 package
PACKAGE_CONFIGS = {
    (True, 96, (1, 2, 7, 2)): "configs/sam2.1/sam2.1_hiera_t.yaml",
    (True, 96, (1, 2, 11, 2)): "configs/sam2.1/sam2.1_hiera_s.yaml",
    (True, 112, (2, 3, 16, 3)): "configs/sam2.1/sam2.1_hiera_b+.yaml",
    (True, 144, (2, 6, 36, 4)): "configs/sam2.1/sam2.1_hiera_l.yaml",
    (False, 96, (1, 2, 7, 2)): "configs/sam2/sam2_hiera_t.yaml",
    (False, 96, (1, 2, 11, 2)): "configs/sam2/sam2_hiera_s.yaml",
    (False, 112, (2, 3, 16, 3)): "configs/sam2/sam2_hiera_b+.yaml",
    (False, 144, (2, 6, 36, 4)): "configs/sam2/sam2_hiera_l.yaml",
}


def unwrap(sd: dict[str, Any]) -> dict[str, Any]:
    """The state dict inside an official SAM 2 file (``{"model": {...}}``), else ``sd``."""
    inner = sd.get("model")
    return inner if isinstance(inner, dict) and TRUNK_KEY in inner else sd


def is_sam2(sd: dict[str, Any]) -> bool:
    """True for a SAM 2 / 2.1 state dict (a Hiera image encoder)."""
    return TRUNK_KEY in unwrap(sd)


def hiera_layout(sd: dict[str, Any], path: str | Path) -> tuple[bool, int, tuple[int, ...]]:
    """(SAM 2.1?, Hiera width, blocks per stage) read from tensor shapes."""
    p = "image_encoder.trunk.blocks."
    try:
        width = int(sd[TRUNK_KEY].shape[0])
        n = 1 + max(int(k[len(p):].split(".")[0]) for k in sd if k.startswith(p))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: SAM 2 checkpoint without readable Hiera blocks ({exc})") from exc
    starts = [0] + [i for i in range(n) if f"{p}{i}.proj.weight" in sd]
    stages = tuple(b - a for a, b in zip(starts, starts[1:] + [n]))
    return "no_obj_embed_spatial" in sd, width, stages


def package_config(sd: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The ``model`` section of the sam2 package's config that fits this checkpoint."""
    layout = hiera_layout(sd, path)
    name = PACKAGE_CONFIGS.get(layout)
    if name is None:
        raise CheckpointError(
            f"{path}: SAM 2 checkpoint with Hiera width {layout[1]} and stages {list(layout[2])} "
            f"matches none of the released models (tiny, small, base+, large); put it in a folder "
            f"with a zsas_model.json whose 'sam2_config' holds its model config")
    return package_config_file(name)


def package_config_file(name: str) -> dict[str, Any]:
    """The ``model`` section of a config file shipped in the sam2 package, as a plain dict."""
    from omegaconf import OmegaConf

    sam2_package()
    import sam2

    cfg = OmegaConf.load(Path(sam2.__file__).parent / name)
    return OmegaConf.to_container(cfg.model, resolve=True)


def sam2_package():
    """Import the sam2 package or raise :class:`CheckpointError` saying how to install it."""
    from .optional import import_model_package

    return import_model_package("sam2.modeling.sam2_base", "a SAM 2 checkpoint", PIP_HINT)


def build_sam2_model(config: dict[str, Any]):
    """An untrained ``SAM2Base`` from a ``model`` config dict (the YAML's ``model`` section)."""
    import copy

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = copy.deepcopy(config)
    extra = dict(cfg.get("sam_mask_decoder_extra_args") or {})
    cfg["sam_mask_decoder_extra_args"] = {**extra, **POSTPROCESSING}
    return instantiate(OmegaConf.create(cfg), _recursive_=True).eval()


def load_sam2_model(sd: dict[str, Any], path: Path, manifest: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(config, model with the checkpoint's weights) for a SAM 2 state dict."""
    sam2_package()
    sd = unwrap(sd)
    config = manifest.get("sam2_config")
    if config is None:
        config = package_config(sd, path)
    elif not isinstance(config, dict) or "image_encoder" not in config:
        raise CheckpointError(f"{path}: 'sam2_config' in the manifest is not a SAM 2 model config")
    model = build_sam2_model(config)
    model.load_state_dict(sd, strict=True)
    return config, model
