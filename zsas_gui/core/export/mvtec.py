"""MVTec AD layout, as anomalib's ``MVTec`` datamodule reads it::

    OUT/<category>/train/good/NNN.png           good images (all, or 1 - good_test_fraction)
    OUT/<category>/test/good/NNN.png            good images picked for testing (good_test_fraction)
    OUT/<category>/test/<class>/NNN.png         defect images, numbered per class by source path
    OUT/<category>/ground_truth/<class>/NNN_mask.png   0/255 masks, same size
    OUT/datamodule.yaml                         ``data:`` block (anomalib.data.MVTecAD)

Images are PNG (anomalib reads ``.png`` only): PNG sources are copied byte for byte, others
re-encoded. The good images sent to ``test/good`` are chosen deterministically: sorted by the
SHA-256 of their source path, the first ``round(fraction * n)``.
"""

from __future__ import annotations

import hashlib
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


def split_good(goods: list[Prepared], fraction: float) -> tuple[list[Prepared], list[Prepared]]:
    """(train, test) good images; the test share is deterministic (see module docstring)."""
    order = sorted(goods, key=lambda p: hashlib.sha256(p.item.rel.encode()).hexdigest())
    n_test = round(fraction * len(goods))
    test = {id(p) for p in order[:n_test]}
    return [p for p in goods if id(p) not in test], [p for p in goods if id(p) in test]


def write(prepared: list[Prepared], dest: Path, opts) -> list[dict]:
    cat = safe_name(opts.category, "dataset")
    groups: dict[str, list[Prepared]] = defaultdict(list)
    for p in prepared:
        if p.abnormal:
            groups[f"test/{p.safe_class}"].append(p)
    train, test = split_good([p for p in prepared if not p.abnormal], opts.good_test_fraction)
    groups["train/good"], groups["test/good"] = train, test
    entries = write_numbered(
        groups, dest, lambda folder, stem: f"{cat}/{folder}/{stem}.png",
        lambda folder, stem, p: f"{cat}/ground_truth/{p.safe_class}/{stem}_mask.png")
    atomic_write_text(dest / CONFIG, datamodule_yaml("anomalib.data.MVTecAD", {"root": ".", "category": cat},
                                                     opts.test_only))
    return entries


def read(out: str | Path) -> dict[str, np.ndarray]:
    """Every image of an MVTec-layout export -> its (H, W) bool mask (zeros for good images)."""
    out = Path(out)
    masks = {}
    for img in sorted(out.glob("*/*/*/*.png")):
        cat, split, label = img.relative_to(out).parts[:3]
        if split not in ("train", "test"):
            continue
        key = img.relative_to(out).as_posix()
        if label == "good":
            masks[key] = np.zeros(image_hw(img), bool)
        else:
            masks[key] = load_mask(out / cat / "ground_truth" / label / f"{img.stem}_mask.png")
    return masks
