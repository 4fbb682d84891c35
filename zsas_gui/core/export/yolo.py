"""YOLO segmentation (ultralytics ``yolo segment``)::

    OUT/images/<project tree>/<image>         the images, copied byte for byte
    OUT/labels/<project tree>/<stem>.txt      one line per defect component:
                                              ``<class id> x1 y1 x2 y2 ...`` normalised to [0, 1]
    OUT/data.yaml                             train/val (both images), names; no ``path``

Class ids are 0.. by sorted (sanitised) class name. Good images get an empty label file
(background). Each vertex is written at its pixel centre, ``(x + 0.5) / W`` rounded to 6
decimals, so that ultralytics, which truncates when it rasterises, lands on the same pixel;
holes are filled (counted in the manifest entry's ``holes_filled``). ``data.yaml`` has no
``path:`` key, so ultralytics takes the yaml's own folder as the dataset root and the export
can be moved (a relative ``path`` would be resolved against the working directory instead).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_text
from .common import Prepared, class_ids, image_hw, manifest_entry, put_bytes, put_image_copy, safe_rel
from .geometry import components, fill_polygons, polygons, polygons_lost

DATA_YAML = "data.yaml"


def label_lines(mask: np.ndarray, class_id: int, lost: dict[str, int]) -> list[str]:
    """YOLO-seg lines for a (H, W) bool mask: one per outer contour of each component; adds
    what the polygons cannot hold to ``lost`` (see :func:`polygons_lost`)."""
    h, w = mask.shape
    lines = []
    for comp in components(mask):
        polys = polygons(comp.mask)
        polygons_lost(comp.mask, polys, lost)
        for poly in polys:
            xy = (poly + 0.5) / np.array([w, h], float)
            lines.append(" ".join([str(class_id)] + [f"{v:.6f}" for v in xy.ravel()]))
    return lines


def write(prepared: list[Prepared], dest: Path, opts) -> list[dict]:
    ids = class_ids(prepared)
    entries = []
    for p in sorted(prepared, key=lambda p: p.item.rel):
        rel = safe_rel(p.item.rel)
        image = put_image_copy(dest, f"images/{rel.as_posix()}", p.item.image_path)
        lost: dict[str, int] = {}
        lines = label_lines(p.mask, ids[p.safe_class], lost) if p.abnormal else []
        label = put_bytes(dest, f"labels/{rel.with_suffix('.txt').as_posix()}",
                          "".join(line + "\n" for line in lines).encode())
        entries.append(manifest_entry(p, image=image, label=label, **lost))
    names = "\n".join(f"  {i}: {json.dumps(c)}" for c, i in ids.items())
    atomic_write_text(dest / DATA_YAML,
                      f"# YOLO-seg dataset written by zsas-gui; train and val both list every image:\n"
                      f"# split them before training for real. No path: key, so ultralytics uses this\n"
                      f"# file's folder as the dataset root (the export can be moved).\n"
                      f"train: images\nval: images\nnames:\n{names if ids else '  {}'}\n")
    return entries


def read(out: str | Path) -> dict[str, np.ndarray]:
    """Image path relative to ``out`` -> (H, W) bool, rasterised as ultralytics does
    (coordinates scaled and truncated, polygons filled with OpenCV)."""
    out = Path(out)
    masks = {}
    for img in sorted(p for p in (out / "images").rglob("*") if p.is_file()):
        h, w = image_hw(img)
        label = out / "labels" / img.relative_to(out / "images").with_suffix(".txt")
        polys = []
        for line in label.read_text().splitlines():
            vals = np.asarray(line.split()[1:], float).reshape(-1, 2) * np.array([w, h])
            polys.append(vals.astype(np.int32))
        masks[img.relative_to(out).as_posix()] = fill_polygons(polys, (h, w))
    return masks
