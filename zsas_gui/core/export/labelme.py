"""labelme JSON, one file beside each copied image::

    OUT/<project tree>/<image>                the image, copied byte for byte
    OUT/<project tree>/<stem>.json            labelme (>= 5.3) annotation, imageData null,
                                              imagePath the image's file name (relative)

One shape per 8-connected defect component, labelled with its class. By default a ``mask``
shape (labelme >= 5.3): ``points`` are the inclusive bounding box corners [[x1, y1], [x2, y2]]
and ``mask`` a base64 PNG (0/1, as labelme writes it) of that box's crop, so holes survive.
With ``polygons``, ``polygon`` shapes through the boundary pixels (labelme draws the outline
too, so hole-free shapes come back exactly; holes are filled and counted in the manifest entry).
Labels are the sanitised class names, as in every layout. Good images get a file with no shapes.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

from ..io.imageio import encode_png
from .common import Prepared, manifest_entry, put_bytes, put_image_copy, safe_rel
from .geometry import components, polygons, polygons_lost

#: labelme version written into the files: the first release that reads ``mask`` shapes.
LABELME_VERSION = "5.3.1"


def _shape(label: str, points, shape_type: str, mask_b64: str | None = None) -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": mask_b64}


def shapes_for(mask: np.ndarray, label: str, as_polygons: bool, lost: dict[str, int]) -> list[dict]:
    """labelme shapes for a (H, W) bool mask (see module docstring); polygons add what they
    cannot hold to ``lost``."""
    shapes = []
    for comp in components(mask):
        if as_polygons:
            polys = polygons(comp.mask)
            polygons_lost(comp.mask, polys, lost)
            for poly in polys:
                shapes.append(_shape(label, poly.astype(float).tolist(), "polygon"))
            continue
        x, y, w, h = comp.bbox
        crop = comp.mask[y:y + h, x:x + w].astype(np.uint8)
        b64 = base64.b64encode(encode_png(crop)).decode("ascii")
        shapes.append(_shape(label, [[float(x), float(y)], [float(x + w - 1), float(y + h - 1)]], "mask", b64))
    return shapes


def write(prepared: list[Prepared], dest: Path, opts) -> list[dict]:
    entries = []
    for p in sorted(prepared, key=lambda p: p.item.rel):
        rel = safe_rel(p.item.rel)
        image = put_image_copy(dest, rel.as_posix(), p.item.image_path)
        lost: dict[str, int] = {}
        shapes = shapes_for(p.mask, p.safe_class, opts.polygons, lost) if p.abnormal else []
        doc = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": rel.name,
               "imageData": None, "imageHeight": p.hw[0], "imageWidth": p.hw[1]}
        label = put_bytes(dest, rel.with_suffix(".json").as_posix(),
                          (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        entries.append(manifest_entry(p, image=image, label=label, **lost))
    return entries


def read_file(path: Path) -> np.ndarray:
    """(H, W) bool union of a labelme file's mask and polygon shapes, rasterised the way
    labelme's ``shapes_to_label`` does (mask crop pasted at the rounded first point; polygons
    drawn with PIL, outline included)."""
    from PIL import Image, ImageDraw

    doc = json.loads(path.read_text(encoding="utf-8"))
    h, w = doc["imageHeight"], doc["imageWidth"]
    out = np.zeros((h, w), bool)
    for s in doc["shapes"]:
        if s["shape_type"] == "mask":
            with Image.open(io.BytesIO(base64.b64decode(s["mask"]))) as im:
                crop = np.asarray(im).astype(bool)
            x1, y1 = np.asarray(s["points"][0]).round().astype(int)
            ph, pw = crop.shape
            out[y1:y1 + ph, x1:x1 + pw] |= crop[:h - y1, :w - x1]
        elif s["shape_type"] == "polygon":
            img = Image.fromarray(np.zeros((h, w), np.uint8))
            ImageDraw.Draw(img).polygon([tuple(pt) for pt in s["points"]], outline=1, fill=1)
            out |= np.asarray(img).astype(bool)
        else:
            raise ValueError(f"{path}: shape_type {s['shape_type']!r} is not read by zsas")
    return out


def read(out: str | Path) -> dict[str, np.ndarray]:
    """Image path relative to ``out`` (from each JSON's imagePath) -> (H, W) bool."""
    out = Path(out)
    masks = {}
    for js in sorted(out.rglob("*.json")):
        if js.parent == out and js.name == "zsas_export.json":
            continue
        doc = json.loads(js.read_text(encoding="utf-8"))
        masks[(js.parent / doc["imagePath"]).relative_to(out).as_posix()] = read_file(js)
    return masks
