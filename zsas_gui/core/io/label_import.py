"""Existing ground truth: find the mask of each image (a zsas export, MVTec layout or plain PNG
masks).

A zsas export (a folder holding ``zsas_export.json``, or a folder inside one) is read through
that manifest: each entry names its source image (the project path) and its mask file, so masks
pair with images even where the export renamed them (``傷.png`` -> ``ece79848.png``, mvtec's
``000.png``), and each entry's ``defect_class`` comes back too. Only mask paths that stay inside
the export folder are followed; masks whose source is not an image of the project are unmatched.
The export's own images (an images root inside the export, e.g. evaluating on an mvtec export)
pair by the layout rules below instead.

Otherwise two layouts are recognised, tried in this order for an image ``<dirs>/<stem>.<ext>``:

- MVTec AD: ``MASKS/ground_truth/<dirs without a leading test/>/<stem>_mask.png``
  (used alone when ``MASKS/ground_truth`` is a folder: the other files there are images);
- plain PNG masks mirroring the image tree: ``MASKS/<dirs>/<stem>.png`` (when the masks are in a
  separate folder) or ``MASKS/<dirs>/<stem>_mask.png`` (also beside the images).

Images without a mask are normal. ``load_ground_truth(root)`` is the evaluation entry point.
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .imageio import find_images

GROUND_TRUTH_DIR = "ground_truth"
MASK_SUFFIX = "_mask"
#: The manifest of a zsas export (the name core/export writes; io may not import export).
EXPORT_MANIFEST = "zsas_export.json"


@dataclass
class MaskMatch:
    """``masks``: image rel (posix, relative to the images root) -> mask file;
    ``unmatched``: mask files no image pairs with; ``layout``: "export", "mvtec" or "plain";
    ``classes``: image rel -> defect class (from an export's manifest); ``problems``: manifest
    entries that could not be used, one line each."""

    masks: dict[str, Path] = field(default_factory=dict)
    unmatched: list[Path] = field(default_factory=list)
    layout: str = "plain"
    classes: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def find_export_manifest(masks_root: Path) -> Path | None:
    """The ``zsas_export.json`` of the export ``masks_root`` is (or lies directly inside), or None."""
    for folder in (masks_root, masks_root.parent):
        if (folder / EXPORT_MANIFEST).is_file():
            return folder / EXPORT_MANIFEST
    return None


def _nfc(rel: str) -> str:
    return unicodedata.normalize("NFC", rel)


def match_export(manifest: Path, rels: list[str]) -> MaskMatch:
    """Pair ``rels`` with the masks listed in an export's ``manifest`` (see the module docstring)."""
    root = manifest.parent.resolve()
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["items"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return MaskMatch(layout="export", problems=[f"{manifest}: cannot read the export manifest ({exc})"])
    by_nfc = {_nfc(r): r for r in rels}
    match = MaskMatch(layout="export")
    for e in entries:
        mask_rel = e.get("mask") if isinstance(e, dict) else None
        if not isinstance(mask_rel, str) or (e.get("provenance") or {}).get("good_from"):
            continue            # no mask file (coco, yolo, labelme; good mvtec images) or not a project image
        mask = (root / mask_rel).resolve()
        if PurePosixPath(mask_rel).is_absolute() or not mask.is_relative_to(root):
            match.problems.append(f"{manifest}: mask {mask_rel!r} lies outside the masks folder; not read")
            continue
        rel = by_nfc.get(_nfc(str(e.get("source", ""))))
        if rel is None or not mask.is_file():
            match.unmatched.append(mask)
            continue
        match.masks[rel] = mask
        if isinstance(e.get("defect_class"), str) and e["defect_class"].strip():
            match.classes[rel] = e["defect_class"]
    match.unmatched.sort()
    return match


def image_rels(images_root: str | os.PathLike, masks_root: str | os.PathLike | None = None) -> list[str]:
    """Image paths (posix, relative to ``images_root``) that can carry a mask: the MVTec
    ``ground_truth/`` folder and, when masks sit beside the images, ``*_mask`` files are left out."""
    images_root = Path(images_root)
    beside = masks_root is None or Path(masks_root).resolve() == images_root.resolve()
    rels = []
    for p in find_images(images_root):
        rel = p.relative_to(images_root).as_posix()
        if rel.split("/", 1)[0] == GROUND_TRUTH_DIR:
            continue
        if beside and PurePosixPath(rel).stem.endswith(MASK_SUFFIX):
            continue
        rels.append(rel)
    return rels


def mask_candidates(rel: str, masks_root: Path, mvtec: bool, separate: bool) -> list[Path]:
    """The paths where an existing mask of image ``rel`` may be, most likely first."""
    p = PurePosixPath(rel)
    dirs, stem = list(p.parent.parts), p.stem
    out = []
    if mvtec:       # the MVTec rule alone: DIR/train/good/000.png is an image there, not a mask
        sub = dirs[1:] if dirs[:1] == ["test"] else dirs
        return [masks_root.joinpath(GROUND_TRUTH_DIR, *sub, f"{stem}{MASK_SUFFIX}.png")]
    if separate:
        out.append(masks_root.joinpath(*dirs, f"{stem}.png"))
    out.append(masks_root.joinpath(*dirs, f"{stem}{MASK_SUFFIX}.png"))
    return out


def match_masks(images_root: str | os.PathLike, rels: list[str] | None = None,
                masks_root: str | os.PathLike | None = None) -> MaskMatch:
    """Pair images under ``images_root`` (``rels``, default :func:`image_rels`) with mask files
    under ``masks_root`` (default: ``images_root``); a zsas export is read through its manifest.
    See the module docstring for the rules."""
    images_root = Path(images_root)
    masks_root = Path(masks_root) if masks_root is not None else images_root
    if rels is None:
        rels = image_rels(images_root, masks_root)
    manifest = find_export_manifest(masks_root)
    if manifest is not None and not images_root.resolve().is_relative_to(manifest.parent.resolve()):
        return match_export(manifest, rels)       # the export's own images pair by its layout
    mvtec = (masks_root / GROUND_TRUTH_DIR).is_dir()
    separate = masks_root.resolve() != images_root.resolve()
    match = MaskMatch(layout="mvtec" if mvtec else "plain")
    for rel in rels:
        for cand in mask_candidates(rel, masks_root, mvtec, separate):
            if cand.is_file():
                match.masks[rel] = cand
                break
    used = {m.resolve() for m in match.masks.values()}
    if mvtec:
        pool = [p for p in (masks_root / GROUND_TRUTH_DIR).rglob("*.png")]
    elif separate:
        pool = [p for p in masks_root.rglob("*.png") if not _hidden(p, masks_root)]
    else:
        pool = [p for p in masks_root.rglob(f"*{MASK_SUFFIX}.png") if not _hidden(p, masks_root)]
    match.unmatched = sorted(p for p in pool if p.is_file() and p.resolve() not in used)
    return match


def load_ground_truth(root: str | os.PathLike, images_root: str | os.PathLike | None = None
                      ) -> dict[str, Path]:
    """Image rel (posix, relative to ``images_root``, default ``root``) -> its ground-truth
    mask file, for every image that has one; images left out are normal.

    ``root`` is an MVTec-layout dataset (``root/ground_truth/...``) or a folder of plain PNG
    masks (mirroring the images, or ``<stem>_mask.png`` beside them).
    """
    return match_masks(images_root if images_root is not None else root, masks_root=root).masks


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
