"""anomalib's Folder layout plus a ready datamodule config::

    OUT/<category>/good/NNN.png             good images (anomalib splits them train/test itself)
    OUT/<category>/<class>/NNN.png          defect images, numbered per class by source path
    OUT/<category>/mask/<class>/NNN.png     0/255 masks, same name as their image
    OUT/datamodule.yaml                     ``data:`` block for ``anomalib train --config``

Folder pairs masks with defect images by sorted path and checks the stems match, which this
naming guarantees. Images are PNG (copied when already PNG). There is no test-only Folder
export: anomalib's Folder refuses a dataset without normal images (validation says so).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_text
from ..io.imageio import load_mask
from .anomalib_config import CONFIG, datamodule_yaml
from .common import (
    Prepared,
    image_hw,
    safe_name,
    write_numbered,
)


def write(prepared: list[Prepared], dest: Path, opts) -> list[dict]:
    cat = safe_name(opts.category, "dataset")
    groups: dict[str, list[Prepared]] = defaultdict(list)
    for p in prepared:
        groups[p.safe_class if p.abnormal else "good"].append(p)
    entries = write_numbered(groups, dest, lambda folder, stem: f"{cat}/{folder}/{stem}.png",
                             lambda folder, stem, p: f"{cat}/mask/{folder}/{stem}.png")
    classes = sorted(g for g in groups if g != "good")
    args = {"name": cat, "root": cat, "normal_dir": "good"}
    if classes:
        args.update(abnormal_dir=classes, mask_dir=[f"mask/{c}" for c in classes])
    args["normal_split_ratio"] = 0.2
    atomic_write_text(dest / CONFIG, datamodule_yaml("anomalib.data.Folder", args, test_only=False))
    return entries


def read(out: str | Path) -> dict[str, np.ndarray]:
    """Every image of a Folder-layout export -> (H, W) bool mask (zeros for good images)."""
    out = Path(out)
    masks = {}
    for img in sorted(out.glob("*/*/*.png")):
        cat, label = img.relative_to(out).parts[:2]
        if label == "mask":
            continue
        key = img.relative_to(out).as_posix()
        masks[key] = (np.zeros(image_hw(img), bool) if label == "good"
                      else load_mask(out / cat / "mask" / label / img.name))
    return masks
