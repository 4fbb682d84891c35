"""Plain masks mirroring the project tree::

    OUT/<folders>/<image stem>.png      0/255 single-channel mask (all zeros for good images)

No images are copied; the manifest maps each mask to its source image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.imageio import load_mask
from .common import Prepared, manifest_entry, put_mask, safe_rel


def write(prepared: list[Prepared], dest: Path, opts) -> list[dict]:
    entries = []
    for p in sorted(prepared, key=lambda p: p.item.rel):
        mask = p.mask if p.abnormal else np.zeros(p.hw, bool)
        rel = safe_rel(p.item.rel).with_suffix(".png")
        entries.append(manifest_entry(p, mask=put_mask(dest, rel, mask)))
    return entries


def read(out: str | Path) -> dict[str, np.ndarray]:
    """Mask path relative to ``out`` -> (H, W) bool."""
    out = Path(out)
    return {p.relative_to(out).as_posix(): load_mask(p) for p in sorted(out.rglob("*.png"))}
