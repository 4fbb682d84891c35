"""Checks before anything is written, and anomalib's MVTec loader rules as a checker.

:func:`prepare` turns :class:`ExportItem` into :class:`Prepared` (mask read and checked) and
collects every failure, one line per file, so the user can fix them all in one go:
- the image is readable; every abnormal image has exactly one mask, of the image's size, with
  values 0/255 only;
- an image ``accepted``/``edited`` (a defect confirmed by a person) must have a non-empty mask;
  ``good`` images are normal whatever their mask; ``unreviewed``/``rejected`` images with an
  empty or no mask are normal (the method predicted no defect), and so are those in a folder
  named good/ok/normal (*good candidates*: the folder says defect-free, the pre-label is set
  aside and counted in the export's notes);
- the anomaly layouts (``needs_good``) have at least one normal image;
- output names pair: two images may not map to the same output stem, two class names may not
  map to the same folder name (compared ignoring case, for case-insensitive disks), and a class
  may not use a name the layout reserves.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path, PurePosixPath

from ...vocabulary import DEFECT_STATUSES, NORMAL_STATUSES
from ..errors import ImageReadError, ZsasError
from .common import (
    GOOD_FOLDERS,
    ExportItem,
    Prepared,
    image_hw,
    in_good_folder,
    read_mask_checked,
    safe_name,
    safe_rel,
)


class ExportValidationError(ZsasError):
    """The items cannot be exported as they are; ``failures`` lists one problem per line."""

    def __init__(self, failures: list[str]):
        self.failures = list(failures)
        head = f"{len(failures)} problem(s) found before writing anything:\n  "
        super().__init__(head + "\n  ".join(failures[:50])
                         + (f"\n  ... and {len(failures) - 50} more" if len(failures) > 50 else ""))


def prepare(items: list[ExportItem], reserved_classes: tuple[str, ...] = (),
            needs_good: str = "") -> list[Prepared]:
    """Validate ``items``; returns them prepared, or raises :class:`ExportValidationError`.
    ``needs_good``: the message to give when no item is normal ("" when none are needed)."""
    failures: list[str] = []
    prepared: list[Prepared] = []
    for it in items:
        try:
            hw = image_hw(it.image_path)
        except ImageReadError as exc:
            failures.append(f"{it.rel}: {exc}")
            continue
        mask = None
        candidate = it.status not in DEFECT_STATUSES + NORMAL_STATUSES and in_good_folder(it.rel)
        if it.status not in NORMAL_STATUSES and it.mask_path is not None and not candidate:
            try:
                mask, problems = read_mask_checked(it.mask_path)
            except (ImageReadError, OSError) as exc:
                failures.append(f"{it.rel}: cannot read its mask ({exc})")
                continue
            failures.extend(f"{it.rel}: {p}" for p in problems)
            if mask.shape != hw:
                failures.append(f"{it.rel}: mask is {mask.shape[1]}x{mask.shape[0]} px but the image is "
                                f"{hw[1]}x{hw[0]} px")
                continue
            if not mask.any():
                mask = None
        if mask is None and it.status in DEFECT_STATUSES:
            failures.append(f"{it.rel}: marked {it.status} (a defect) but has no mask; draw the "
                            f"defect or mark the image good")
            continue
        prepared.append(Prepared(it, hw, mask, safe_name(it.defect_class), good_candidate=candidate))
    failures.extend(_name_failures(prepared, reserved_classes))
    if needs_good and prepared and all(p.abnormal for p in prepared):
        failures.append(needs_good)
    if failures:
        raise ExportValidationError(failures)
    return prepared


def _name_failures(prepared: list[Prepared], reserved: tuple[str, ...]) -> list[str]:
    failures = []
    by_safe: dict[str, set[str]] = defaultdict(set)
    for p in prepared:
        if p.abnormal:
            by_safe[p.safe_class.lower()].add(p.item.defect_class)   # case-insensitive disks
    for safe, names in sorted(by_safe.items()):
        if len(names) > 1:
            failures.append(f"classes {sorted(names)} would share the folder name {safe!r}; rename one")
        if safe in reserved:
            failures.append(f"class {min(names)!r}: the name {safe!r} is reserved in this layout "
                            f"({', '.join(reserved)}); rename the class")
    by_stem: dict[PurePosixPath, list[str]] = defaultdict(list)
    for p in prepared:
        by_stem[PurePosixPath(safe_rel(p.item.rel).with_suffix("").as_posix().lower())].append(p.item.rel)
    for stem, rels in sorted(by_stem.items()):
        if len(rels) > 1:
            failures.append(f"{', '.join(rels)}: would get the same output name {stem}.*; rename one")
    return failures


def export_notes(prepared: list[Prepared], entries: list[dict], test_only: bool) -> list[str]:
    """What the user should know about a finished export (printed under its summary)."""
    notes = []
    candidates = [p for p in prepared if p.good_candidate and p.item.mask_path is not None]
    if candidates:
        notes.append(f"{len(candidates)} unreviewed/rejected images in {'/'.join(GOOD_FOLDERS)} folders exported as "
                     f"good candidates: their pre-labels were set aside (review them to export a defect)")
    if test_only:
        notes.append("test-only export: no good images, so anomalib cannot train on it (see datamodule.yaml)")
    holes = sum(e.get("holes_filled", 0) for e in entries)
    if holes:
        notes.append(f"{holes} holes filled: polygons cannot hold holes (the manifest counts them per image; "
                     f"RLE and mask shapes keep them)")
    flat = sum(e.get("zero_area_polygons", 0) for e in entries)
    if flat:
        notes.append(f"{flat} one-pixel-wide shapes written as zero-area polygons: kept (labelme and "
                     f"ultralytics draw their outline) but tools that fill polygons by area drop them")
    return notes


# -- anomalib's MVTec rules ---------------------------------------------------------------------
def check_mvtec_layout(category_root: str | Path) -> list[str]:
    """Problems anomalib's MVTec loader would have with ``category_root`` (empty list: none).

    Its rules: every file considered is ``<split>/<label>/<name>.png`` under the category;
    ``good`` is normal; test images of other labels each need a mask, paired by sorted path
    with ``ground_truth/<label>/<name>_mask.png``; masks are single-channel 0/255 PNGs the size
    of their image; ``train`` holds only ``good``.
    """
    import numpy as np
    from PIL import Image

    root = Path(category_root)
    problems: list[str] = []
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for p in files:
        rel = p.relative_to(root)
        if p.suffix != ".png":
            problems.append(f"{rel}: not a .png file (the loader skips it)")
        elif len(rel.parts) != 3:
            problems.append(f"{rel}: not at <split>/<label>/<file>.png")
        elif rel.parts[0] not in ("train", "test", "ground_truth"):
            problems.append(f"{rel}: unknown split {rel.parts[0]!r}")
        elif rel.parts[0] == "train" and rel.parts[1] != "good":
            problems.append(f"{rel}: train/ may only hold good images")
    pngs = [p.relative_to(root) for p in files if p.suffix == ".png" and len(p.relative_to(root).parts) == 3]
    abnormal = sorted(str(r) for r in pngs if r.parts[0] == "test" and r.parts[1] != "good")
    masks = sorted(str(r) for r in pngs if r.parts[0] == "ground_truth")
    if len(abnormal) != len(masks):
        problems.append(f"{len(abnormal)} defect images but {len(masks)} masks")
    for img, mask in zip(abnormal, masks):
        ip, mp = PurePosixPath(img), PurePosixPath(mask)
        if mp.name != f"{ip.stem}_mask.png" or mp.parent.name != ip.parent.name:
            problems.append(f"{img}: pairs with {mask} in sorted order; expected "
                            f"ground_truth/{ip.parent.name}/{ip.stem}_mask.png")
            continue
        with Image.open(root / img) as im:
            isize = im.size
        with Image.open(root / mask) as mm:
            marr = np.asarray(mm)
        if marr.ndim != 2:
            problems.append(f"{mask}: not single-channel")
        elif not np.isin(np.unique(marr), (0, 255)).all():
            problems.append(f"{mask}: values are not 0/255")
        elif marr.shape[::-1] != isize:
            problems.append(f"{mask}: size {marr.shape[::-1]} differs from its image {isize}")
        elif not marr.any():
            problems.append(f"{mask}: empty mask for a defect image")
    return problems
