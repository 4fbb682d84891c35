"""Existing ground truth: find the mask of each image (MVTec layout or plain PNG masks).

Two layouts are recognised, tried in this order for an image ``<dirs>/<stem>.<ext>``:

- MVTec AD: ``MASKS/ground_truth/<dirs without a leading test/>/<stem>_mask.png``
  (used when ``MASKS/ground_truth`` is a folder);
- plain PNG masks mirroring the image tree: ``MASKS/<dirs>/<stem>.png`` (when the masks are in a
  separate folder) or ``MASKS/<dirs>/<stem>_mask.png`` (also beside the images).

Images without a mask are normal. ``load_ground_truth(root)`` is the evaluation entry point.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .imageio import find_images

GROUND_TRUTH_DIR = "ground_truth"
MASK_SUFFIX = "_mask"


@dataclass
class MaskMatch:
    """``masks``: image rel (posix, relative to the images root) -> mask file;
    ``unmatched``: mask files no image pairs with; ``layout``: "mvtec" or "plain"."""

    masks: dict[str, Path] = field(default_factory=dict)
    unmatched: list[Path] = field(default_factory=list)
    layout: str = "plain"


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
    if mvtec:
        sub = dirs[1:] if dirs[:1] == ["test"] else dirs
        out.append(masks_root.joinpath(GROUND_TRUTH_DIR, *sub, f"{stem}{MASK_SUFFIX}.png"))
    if separate:
        out.append(masks_root.joinpath(*dirs, f"{stem}.png"))
    out.append(masks_root.joinpath(*dirs, f"{stem}{MASK_SUFFIX}.png"))
    return out


def match_masks(images_root: str | os.PathLike, rels: list[str] | None = None,
                masks_root: str | os.PathLike | None = None) -> MaskMatch:
    """Pair images under ``images_root`` (``rels``, default :func:`image_rels`) with mask files
    under ``masks_root`` (default: ``images_root``). See the module docstring for the rules."""
    images_root = Path(images_root)
    masks_root = Path(masks_root) if masks_root is not None else images_root
    if rels is None:
        rels = image_rels(images_root, masks_root)
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
    match.unmatched = sorted(p for p in pool if p.resolve() not in used)
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
