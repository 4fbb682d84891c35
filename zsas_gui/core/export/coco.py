"""COCO instance segmentation::

    OUT/images/<project tree>/<image>        the images, copied byte for byte
    OUT/annotations.json                     images, categories, annotations

One category per defect class (ids 1.. by sorted name, ``supercategory`` "defect"); one
annotation per 8-connected component of a mask, ``iscrowd`` 0, ``area`` its pixel count,
``bbox`` [x, y, w, h] its pixel extents. Segmentation is compressed RLE (column-major, the
string form pycocotools writes) by default; with ``polygons`` the outer boundary through pixel
centres (+0.5), which loses holes and rasterises about one pixel smaller at the border.
Good images are listed without annotations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_json
from .common import Prepared, class_ids, manifest_entry, put_image_copy, safe_rel
from .geometry import components, polygons, rle_decode, rle_encode

ANNOTATIONS = "annotations.json"


def write(prepared: list[Prepared], dest: Path, opts) -> list[dict]:
    ids = class_ids(prepared)
    images, annotations, entries = [], [], []
    for image_id, p in enumerate(sorted(prepared, key=lambda p: p.item.rel), start=1):
        file_name = safe_rel(p.item.rel).as_posix()
        put_image_copy(dest, f"images/{file_name}", p.item.image_path)
        h, w = p.hw
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        for comp in components(p.mask) if p.abnormal else []:
            if opts.polygons:
                seg = [(poly + 0.5).ravel().tolist() for poly in polygons(comp.mask)]
            else:
                seg = rle_encode(comp.mask)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": ids[p.item.defect_class] + 1, "segmentation": seg,
                                "area": comp.area, "bbox": list(comp.bbox), "iscrowd": 0})
        entries.append(manifest_entry(p, image=f"images/{file_name}", coco_image_id=image_id))
    categories = [{"id": i + 1, "name": c, "supercategory": "defect"} for c, i in ids.items()]
    atomic_write_json(dest / ANNOTATIONS, {
        "info": {"description": f"zsas-gui export of {opts.source or opts.category}",
                 "version": "1.0"},
        "licenses": [], "images": images, "annotations": annotations, "categories": categories})
    return entries


def read(out: str | Path) -> dict[str, np.ndarray]:
    """Image path relative to ``out`` -> union of its annotations' masks, (H, W) bool. RLE is
    decoded exactly; polygons are filled with OpenCV (pixel centres at +0.5)."""
    import cv2

    data = json.loads((Path(out) / ANNOTATIONS).read_text(encoding="utf-8"))
    masks = {}
    by_id = {}
    for im in data["images"]:
        key = f"images/{im['file_name']}"
        masks[key] = np.zeros((im["height"], im["width"]), bool)
        by_id[im["id"]] = key
    for ann in data["annotations"]:
        key = by_id[ann["image_id"]]
        seg = ann["segmentation"]
        if isinstance(seg, dict):
            masks[key] |= rle_decode(seg)
        else:
            m = np.zeros(masks[key].shape, np.uint8)
            pts = [np.floor(np.asarray(s, float).reshape(-1, 2)).astype(np.int32) for s in seg]
            cv2.fillPoly(m, pts, 1)
            masks[key] |= m.astype(bool)
    return masks
