"""Existing masks as starting annotations of a project (``zsas label FOLDER --from-masks DIR``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ImageReadError, ZsasError
from ..core.export.common import image_hw
from ..core.io.imageio import load_mask
from ..core.io.label_import import image_rels, match_masks
from .project import Project


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)       # rels given a mask
    marked_good: list[str] = field(default_factory=list)    # rels without a mask marked good
    skipped_reviewed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)         # "rel: why"
    unmatched: list[Path] = field(default_factory=list)     # mask files without an image
    mask_files_in_project: int = 0                          # project "images" that are masks: skipped

    def __str__(self) -> str:
        return (f"{len(self.imported)} masks imported, {len(self.marked_good)} images marked good, "
                f"{len(self.skipped_reviewed)} already reviewed (kept), {len(self.failed)} failed, "
                f"{len(self.unmatched)} mask files matched no image"
                + (f"; {self.mask_files_in_project} mask files inside the project were not taken for "
                   f"images" if self.mask_files_in_project else ""))


def _rel_inside(masks_root: Path, root: Path) -> str | None:
    """``masks_root`` relative to the project ``root`` with a trailing ``/`` when it is a
    subfolder of it (its files are masks, not images), else None."""
    try:
        rel = masks_root.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    return f"{rel}/" if rel != "." else None


def import_masks(proj: Project, masks_root: str | Path, status: str = "unreviewed",
                 missing_good: bool = False, overwrite_reviewed: bool = False,
                 allow_unmatched: bool = False) -> ImportReport:
    """Store the mask found for each project image (see :mod:`zsas_gui.core.io.label_import`)
    with ``status`` and ``provenance.mask_source = "imported"``; from a zsas export, also the
    class its manifest lists.

    Mask files that pair with no image raise ZsasError before anything is stored (a typo or
    a renamed image would silently lose labels), unless ``allow_unmatched``. Images already
    reviewed (status other than unreviewed) are kept unless ``overwrite_reviewed``. With
    ``missing_good``, images without a mask become ``good``. A mask whose size differs from
    its image is reported in ``failed`` and not stored.
    """
    masks = set(image_rels(proj.root, masks_root))
    inside = _rel_inside(Path(masks_root), proj.root)
    entries = [e for e in proj.images if e.rel in masks and not (inside and e.rel.startswith(inside))]
    match = match_masks(proj.root, [e.rel for e in entries], masks_root)
    if match.unmatched and not allow_unmatched:
        shown = "\n  ".join(str(p) for p in match.unmatched[:10])
        more = f"\n  ... and {len(match.unmatched) - 10} more" if len(match.unmatched) > 10 else ""
        raise ZsasError(f"{len(match.unmatched)} mask files in {masks_root} matched no image of {proj.root}; "
                        f"nothing was imported:\n  {shown}{more}\nrename them to match the images, or pass "
                        f"--allow-unmatched to import the rest")
    report = ImportReport(unmatched=match.unmatched, failed=list(match.problems),
                          mask_files_in_project=len(proj.images) - len(entries))
    for entry in entries:
        mask_path = match.masks.get(entry.rel)
        if mask_path is None and not missing_good:
            continue
        rec = proj.load(entry.rel)
        if rec.status != "unreviewed" and not overwrite_reviewed:
            report.skipped_reviewed.append(entry.rel)
            continue
        if mask_path is None:
            rec.status, rec.mask = "good", None
            rec.provenance = {k: v for k, v in rec.provenance.items() if k != "mask_source"}
            proj.save(rec)
            report.marked_good.append(entry.rel)
            continue
        try:
            mask = load_mask(mask_path)
            hw = image_hw(entry.path)
        except ImageReadError as exc:
            report.failed.append(f"{entry.rel}: {exc}")
            continue
        if mask.shape != hw:
            report.failed.append(f"{entry.rel}: mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} px, "
                                 f"the image {hw[1]}x{hw[0]} px")
            continue
        rec.mask = mask
        rec.defect_class = match.classes.get(entry.rel, rec.defect_class)
        rec.status = status if mask.any() or status == "unreviewed" else "good"
        rec.provenance = {**rec.provenance, "mask_source": "imported", "imported_from": str(mask_path)}
        proj.save(rec)
        report.imported.append(entry.rel)
    return report
