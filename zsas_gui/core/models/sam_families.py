"""Which SAM a checkpoint holds, and the model built for it (docs/decisions.md, "SAM backends").

Three families share the cascade (ALGORITHM.md §3): ``"sam1"`` (segment_anything's ``Sam``:
ViT-B/L/H and MobileSAM), ``"sam2"`` (SAM 2 / 2.1, the ``sam2`` package) and ``"sam_hq"``
(HQ-SAM, ``segment-anything-hq``). The family is read from the tensors, like the architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FAMILIES = ("sam1", "sam2", "sam_hq")


def sam_family(sd: dict[str, Any]) -> str:
    """``"sam2"``, ``"sam_hq"`` or ``"sam1"`` for a checkpoint's state dict."""
    from .hq_loading import is_hq
    from .sam2_loading import is_sam2

    if is_sam2(sd):
        return "sam2"
    return "sam_hq" if is_hq(sd) else "sam1"


def build_sam_checkpoint(sd: dict[str, Any], path: Path, decoder_heads: int,
                         manifest: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """(family, architecture, model holding the checkpoint's weights), strict loading.

    Raises :class:`CheckpointError` for files of no known layout and the usual torch errors
    (``RuntimeError`` ...) when the tensors do not fit the architecture read from them."""
    from .loading import build_sam_from_arch, check_sam_declared, sam_arch_from_state_dict

    family = sam_family(sd)
    if family == "sam2":
        from .sam2_loading import load_sam2_model

        config, model = load_sam2_model(sd, path, manifest)
        return family, {"sam2_config": config}, model
    arch = sam_arch_from_state_dict(sd, path, decoder_heads=decoder_heads)
    if family == "sam_hq":
        from .hq_loading import build_hq_from_arch, hq_arch

        arch = hq_arch(sd, arch)
        model = build_hq_from_arch(arch)
    else:
        check_sam_declared(arch, sd, path)   # before anything is allocated (a small file may declare a huge model)
        model = build_sam_from_arch(arch)
    model.load_state_dict(sd, strict=True)
    return family, arch, model
