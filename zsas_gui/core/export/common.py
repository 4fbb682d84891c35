"""What every exporter shares: the item type, name sanitising, mask/image reading, the manifest."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import OutputError
from ..io.atomic import atomic_write_bytes
from ..io.imageio import (
    encode_png,
    find_images,
    load_image,
    load_mask_pixels,
    mask_from_pixels,
    open_image,
    read_errors,
)

#: Folder names that say their images are defect-free (compared ignoring case).
GOOD_FOLDERS = ("good", "ok", "normal")


def in_good_folder(rel: str) -> bool:
    """True when a folder of the image path ``rel`` (posix) is named like :data:`GOOD_FOLDERS`:
    ``train/good/000.png``, ``OK/a.png``."""
    return any(part.lower() in GOOD_FOLDERS for part in PurePosixPath(rel).parent.parts)


@dataclass(frozen=True)
class ExportItem:
    """One image to export. ``mask_path``: a 0/255 single-channel PNG of the image's size, or
    None when there is no mask; ``rel``: the image's path relative to the project root (posix)."""

    rel: str
    image_path: Path
    mask_path: Path | None
    defect_class: str
    status: str
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """An item after validation. ``mask``: (H, W) bool or None (normal image); ``hw``: image (H, W);
    ``good_candidate``: unreviewed/rejected in a good/ok/normal folder, exported as normal."""

    item: ExportItem
    hw: tuple[int, int]
    mask: np.ndarray | None
    safe_class: str
    good_candidate: bool = False

    @property
    def abnormal(self) -> bool:
        return self.mask is not None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, fallback: str = "defect") -> str:
    """A file/folder name made of ``[A-Za-z0-9._-]`` only, never empty, ``.`` or ``..`` and not
    hidden, no ``..`` inside: ``"scratch / deep"`` -> ``"scratch_deep"``, ``"../x"`` -> ``"x"``."""
    s = re.sub(r"\.{2,}", "_", _UNSAFE.sub("_", name.strip()))
    s = re.sub(r"_{2,}", "_", s).strip("._")
    return s or fallback


def safe_rel(rel: str) -> PurePosixPath:
    """``rel`` with every part sanitised (mirrors the project tree, never leaves the output).

    The file extension is kept, and a part that sanitising changed gets 8 hex digits of its
    SHA-256 so that different names never meet (names in other scripts would otherwise all
    collapse to ``_``): ``"ok/000.png"`` stays, ``"傷/ä b.png"`` -> ``"9c1d2e3f/b-5a6b7c8d.png"``.
    """
    raw = [p for p in PurePosixPath(rel).parts if p not in ("", ".", "..", "/")]
    if not raw:
        raise OutputError(f"cannot make an output name from {rel!r}")
    parts = []
    for i, part in enumerate(raw):
        stem, suffix = (part.rsplit(".", 1) if i == len(raw) - 1 and "." in part.strip(".") else (part, ""))
        safe_suffix = _UNSAFE.sub("", suffix)
        safe = safe_name(stem, "")
        if safe != stem or safe_suffix != suffix:
            digest = hashlib.sha256(part.encode("utf-8", "surrogateescape")).hexdigest()[:8]
            safe = f"{safe}-{digest}" if safe else digest
        parts.append(f"{safe}.{safe_suffix}" if safe_suffix else safe)
    return PurePosixPath(*parts)


def good_items_from(folder: Path) -> list[ExportItem]:
    """Every image under ``folder`` as a ``good`` item (``--good-from DIR``): ``rel`` is
    ``<folder name>/<path inside>``, ``provenance.good_from`` the image's absolute path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OutputError(f"--good-from {folder}: not a folder")
    items = [ExportItem(rel=f"{folder.resolve().name}/{p.relative_to(folder).as_posix()}", image_path=p,
                        mask_path=None, defect_class="good", status="good",
                        provenance={"good_from": str(p.resolve())})
             for p in find_images(folder)]
    if not items:
        raise OutputError(f"--good-from {folder}: no images found there")
    return items


def inside(root: Path, path: Path) -> Path:
    """``path`` resolved, after checking it lies inside ``root`` (a guard against odd names)."""
    root_r, path_r = root.resolve(), path.resolve()
    if root_r != path_r and root_r not in path_r.parents:
        raise OutputError(f"refusing to write {path}: outside the export folder {root}")
    return path


def image_hw(path: Path) -> tuple[int, int]:
    """(H, W) of an image as :func:`load_image` would return it (EXIF orientation applied),
    from the file header only. Raises :class:`ImageReadError` for unreadable files."""
    with read_errors(path, "image"), open_image(path) as img:
        w, h = img.size
        orientation = img.getexif().get(0x0112, 1)
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def image_png_bytes(path: Path) -> bytes:
    """The image as PNG bytes: a PNG without EXIF rotation is copied byte for byte (keeps grey
    or 16-bit data as is); anything else is decoded to RGB and re-encoded."""
    if path.suffix.lower() == ".png":
        with open_image(path) as img:
            orientation = img.getexif().get(0x0112, 1)
            fmt = img.format
        if fmt == "PNG" and orientation in (0, 1):
            return path.read_bytes()
    return encode_png(load_image(path))


def read_mask_checked(path: Path) -> tuple[np.ndarray, list[str]]:
    """Read a stored mask; returns ((H, W) bool, problems) where a problem is a value other
    than 0/255 or more than one channel."""
    problems = []
    arr = load_mask_pixels(path)          # any damage: ImageReadError naming the file
    if arr.ndim != 2:
        problems.append(f"{path}: mask has {arr.shape[2]} channels, expected 1")
    else:
        values = np.unique(arr)
        if not np.isin(values, (0, 255)).all():
            problems.append(f"{path}: mask values {values[:6].tolist()} are not 0/255")
    return mask_from_pixels(arr), problems


def numbered(n_total: int) -> int:
    """Digits for zero-padded numbering of ``n_total`` files (at least 3: ``000``)."""
    return max(3, len(str(max(n_total - 1, 0))))


def write_numbered(groups: dict[str, list[Prepared]], dest: Path, image_rel, mask_rel) -> list[dict]:
    """Write each folder's images as PNGs numbered 000, 001, ... in the order of their source
    paths, with a mask for each abnormal one; return the manifest entries.

    ``image_rel(folder, stem)`` and ``mask_rel(folder, stem, prepared)`` give the paths inside
    ``dest`` (the layouts differ only there)."""
    entries = []
    for folder, items in sorted(groups.items()):
        items = sorted(items, key=lambda p: p.item.rel)
        width = numbered(len(items))
        for i, p in enumerate(items):
            stem = f"{i:0{width}d}"
            paths = {"image": put_bytes(dest, image_rel(folder, stem), image_png_bytes(p.item.image_path))}
            if p.abnormal:
                paths["mask"] = put_mask(dest, mask_rel(folder, stem, p), p.mask)
            entries.append(manifest_entry(p, **paths))
    return entries


def manifest_entry(p: Prepared, **paths: str) -> dict[str, Any]:
    it = p.item
    flags = {"good_candidate": True} if p.good_candidate else {}
    return {"source": it.rel, "status": it.status, "defect_class": it.defect_class,
            "abnormal": p.abnormal, "size": list(p.hw), **flags, **paths, "provenance": it.provenance}


def now_utc() -> str:
    from datetime import datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def put_bytes(dest_root: Path, rel: str | PurePosixPath, data: bytes) -> str:
    """Atomically write ``data`` to ``dest_root/rel`` (checked to stay inside); returns ``rel``."""
    path = inside(dest_root, dest_root / str(rel))
    atomic_write_bytes(path, data)
    return str(rel)


def put_mask(dest_root: Path, rel: str | PurePosixPath, mask: np.ndarray) -> str:
    """Write a (H, W) bool mask as a 0/255 single-channel PNG at ``dest_root/rel``."""
    return put_bytes(dest_root, rel, encode_png(np.asarray(mask, dtype=bool)))


def put_image_copy(dest_root: Path, rel: str | PurePosixPath, src: Path) -> str:
    """Copy the image file ``src`` byte for byte to ``dest_root/rel``."""
    return put_bytes(dest_root, rel, src.read_bytes())


def class_ids(prepared: list[Prepared]) -> dict[str, int]:
    """Sanitised defect class name (``Prepared.safe_class``, the name every layout writes: COCO
    categories, YOLO names, labelme labels, class folders) -> 0-based id, by sorted name, over
    the abnormal items. The manifest keeps the original name."""
    return {c: i for i, c in enumerate(sorted({p.safe_class for p in prepared if p.abnormal}))}
