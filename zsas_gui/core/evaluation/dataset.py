"""Finding test images and their ground-truth masks in an MVTec AD folder layout.

    ROOT/test/<class>/NAME.png                 (a category folder), or
    ROOT/<category>/test/<class>/NAME.png      (a dataset of categories, e.g. MVTec AD, VisA
                                                converted to the MVTec layout)
    .../ground_truth/<class>/NAME_mask.png     0/255 masks; ``good`` images have none

Any image extension :func:`find_images` accepts is read; masks are looked up as
``NAME_mask.*`` then ``NAME.*`` in ``ground_truth/<class>/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ZsasError
from ..io.imageio import IMAGE_EXTENSIONS, find_images

GOOD = "good"


@dataclass(frozen=True)
class EvalItem:
    """One test image. ``mask`` is None for ``good`` images (all-normal ground truth)."""

    category: str
    defect_class: str
    image: Path
    mask: Path | None
    rel: str                 # "category/class/stem", unique, used in the CSV and messages

    @property
    def is_anomalous(self) -> bool:
        return self.defect_class != GOOD


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_categories(root: str | os.PathLike, category: str | None = None,
                    categories: list[str] | None = None) -> list[tuple[str, Path]]:
    """(name, folder) of each category to evaluate. ROOT is one category when it holds ``test/``,
    otherwise every subfolder holding ``test/`` is one. ``category``/``categories`` select by name."""
    root = Path(root)
    if not root.is_dir():
        raise ZsasError(f"{root}: no such folder (expected an MVTec AD layout)")
    wanted = [category] if category else list(categories or [])
    if (root / "test").is_dir():
        found = [(root.resolve().name, root)]
        if wanted and wanted != [found[0][0]]:
            raise ZsasError(f"{root} is a single category ({found[0][0]}) with test/ directly inside; "
                            f"drop --category/--categories or point ROOT at the dataset folder")
        return found
    found = [(p.name, p) for p in _subdirs(root) if (p / "test").is_dir()]
    if not found:
        raise ZsasError(f"{root}: no MVTec AD layout found (expected ROOT/test/<class>/ or "
                        f"ROOT/<category>/test/<class>/)")
    if wanted:
        names = {n for n, _ in found}
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise ZsasError(f"unknown categor{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} "
                            f"under {root}; available: {', '.join(sorted(names))}")
        found = [(n, p) for n, p in found if n in wanted]
    return found


def find_mask(gt_dir: Path, image: Path) -> Path | None:
    """The ground-truth mask of ``image`` in ``gt_dir`` (``STEM_mask.*`` or ``STEM.*``), or None."""
    for stem in (f"{image.stem}_mask", image.stem):
        for ext in (".png", *IMAGE_EXTENSIONS):
            for cand in (gt_dir / f"{stem}{ext}", gt_dir / f"{stem}{ext.upper()}"):
                if cand.is_file():
                    return cand
    return None


def discover(root: str | os.PathLike, category: str | None = None, categories: list[str] | None = None,
             classes: list[str] | None = None, limit: int | None = None
             ) -> tuple[list[EvalItem], list[tuple[str, str]]]:
    """Every test image to evaluate, sorted by category, class and name.

    ``classes``: only these defect classes (``test/`` subfolder names); ``limit``: at most this many
    images per class. Returns ``(items, problems)``; ``problems`` are ``(image path, message)``
    for defect images without a mask (left out). Raises ZsasError when nothing is found.
    """
    if limit is not None and limit < 1:
        raise ZsasError(f"--limit must be >= 1, got {limit}")
    items: list[EvalItem] = []
    problems: list[tuple[str, str]] = []
    seen_classes: set[str] = set()
    for cat, cdir in find_categories(root, category, categories):
        for cls_dir in _subdirs(cdir / "test"):
            seen_classes.add(cls_dir.name)
            if classes and cls_dir.name not in classes:
                continue
            images = find_images(cls_dir)[:limit]
            for img in images:
                rel = f"{cat}/{cls_dir.name}/{img.relative_to(cls_dir).with_suffix('').as_posix()}"
                mask = None
                if cls_dir.name != GOOD:
                    mask = find_mask(cdir / "ground_truth" / cls_dir.name, img)
                    if mask is None:
                        msg = f"no ground-truth mask (looked for ground_truth/{cls_dir.name}/{img.stem}_mask.png)"
                        problems.append((str(img), msg))
                        continue
                items.append(EvalItem(cat, cls_dir.name, img, mask, rel))
    if classes:
        missing = [c for c in classes if c not in seen_classes]
        if missing:
            raise ZsasError(f"no test/ class {', '.join(missing)}; found: {', '.join(sorted(seen_classes))}")
    if not items:
        raise ZsasError(f"no test images with ground truth found under {root}")
    return items, problems
