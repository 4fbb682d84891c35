"""COCO instance segmentation, in the layout datumaro, CVAT and fiftyone import::

    OUT/images/default/<project tree>/<image>     the images, copied byte for byte
    OUT/annotations/instances_default.json        images, categories, annotations

(subset ``default``; ``file_name`` is relative to ``images/default``). One category per defect
class, named like the class folders of the other layouts (:func:`safe_name`; the manifest keeps
the original name), ids 1.. by sorted name, ``supercategory`` "defect"; one annotation per
8-connected component of a mask, ``iscrowd`` 0, ``area`` its pixel count, ``bbox`` [x, y, w, h]
its pixel extents. Segmentation is compressed RLE (column-major, the string form pycocotools
writes) by default; with ``polygons`` the outline along the pixel edges (corner coordinates),
which pycocotools rasterises back to exactly the component when it has no holes; holes are
filled, and the manifest entry counts them (``holes_filled``). Good images are listed without
annotations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_json
from .common import Prepared, class_ids, manifest_entry, put_image_copy, safe_rel
from .geometry import (
    boundary_polygons,
    components,
    count_holes,
    fill_boundary_polygons,
    rle_decode,
    rle_encode,
)

ANNOTATIONS = "annotations/instances_default.json"
IMAGES = "images/default"


def write(prepared: list[Prepared], dest: Path, opts) -> list[dict]:
    ids = class_ids(prepared)
    images, annotations, entries = [], [], []
    for image_id, p in enumerate(sorted(prepared, key=lambda p: p.item.rel), start=1):
        file_name = safe_rel(p.item.rel).as_posix()
        put_image_copy(dest, f"{IMAGES}/{file_name}", p.item.image_path)
        h, w = p.hw
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        holes = 0
        for comp in components(p.mask) if p.abnormal else []:
            if opts.polygons:
                seg = [poly.astype(float).ravel().tolist() for poly in boundary_polygons(comp.mask)]
                holes += count_holes(comp.mask)
            else:
                seg = rle_encode(comp.mask)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": ids[p.safe_class] + 1, "segmentation": seg,
                                "area": comp.area, "bbox": list(comp.bbox), "iscrowd": 0})
        extra = {"holes_filled": holes} if holes else {}
        entries.append(manifest_entry(p, image=f"{IMAGES}/{file_name}", coco_image_id=image_id, **extra))
    categories = [{"id": i + 1, "name": c, "supercategory": "defect"} for c, i in ids.items()]
    atomic_write_json(dest / ANNOTATIONS, {
        "info": {"description": f"zsas-gui export of {opts.source or opts.category}",
                 "version": "1.0"},
        "licenses": [], "images": images, "annotations": annotations, "categories": categories})
    return entries


def read(out: str | Path) -> dict[str, np.ndarray]:
    """Image path relative to ``out`` -> union of its annotations' masks, (H, W) bool. RLE is
    decoded exactly; polygons are filled by COCO's rule (a pixel whose centre is inside)."""
    data = json.loads((Path(out) / ANNOTATIONS).read_text(encoding="utf-8"))
    masks = {}
    by_id = {}
    for im in data["images"]:
        key = f"{IMAGES}/{im['file_name']}"
        masks[key] = np.zeros((im["height"], im["width"]), bool)
        by_id[im["id"]] = key
    for ann in data["annotations"]:
        key = by_id[ann["image_id"]]
        seg = ann["segmentation"]
        masks[key] |= rle_decode(seg) if isinstance(seg, dict) else fill_boundary_polygons(seg, masks[key].shape)
    return masks
