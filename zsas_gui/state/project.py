"""A project: a folder of images and its annotations in the sidecar folder ``FOLDER/.zsas/``.

    proj = Project.open(folder)
    rec = proj.load("test/crack/000.png")     # a fresh unreviewed record if none is stored
    rec.status = "accepted"; proj.save(rec)    # atomic, immediate (autosave)

Guarantees (see :mod:`.store` for the write order):
- every :meth:`Project.save` is atomic: a crash at any moment leaves the previous record whole;
- a corrupt record is listed in :attr:`Project.problems` and left on disk; saving that image
  later first moves the file aside to ``<name>.json.corrupt-<timestamp>`` (and says so in
  ``problems``): nothing is overwritten silently. A record from a newer schema is never
  touched: saving over it raises :class:`NewerSchemaError`;
- records whose image has gone are kept and listed in :attr:`Project.orphans`; an orphan whose
  image file (same bytes) reappears under another name is re-linked on open
  (:attr:`Project.relinked`).

One writer at a time: two processes saving the same project may drop each other's edits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ImageReadError, OutputError, RecordError
from ..core.export.common import ExportItem
from ..core.io import atomic
from ..core.io.imageio import find_images
from .record import STATUSES, AnnotationRecord, NewerSchemaError, mask_file_of, now_iso
from .store import Store, file_sha256


@dataclass(frozen=True)
class ImageEntry:
    """An image of the project: ``rel`` is its posix path relative to the root."""

    rel: str
    path: Path


@dataclass
class _Meta:
    """What :meth:`Project.open` keeps of each parsed record (no pixels)."""

    status: str
    defect_class: str
    mask_file: str | None
    image_hash: str | None
    image_bytes: int | None


class Project:
    """Use :meth:`open`. Attributes: ``root`` (Path), ``images`` (list[ImageEntry], sorted by
    rel), ``problems`` (list[str]), ``orphans`` (list[str] record rels without an image),
    ``relinked`` (list[(old_rel, new_rel)] re-linked by content on open)."""

    def __init__(self, root: Path, store: Store, settings: dict):
        self.root = root
        self.store = store
        self.settings = settings
        self.images: list[ImageEntry] = []
        self.problems: list[str] = []
        self.orphans: list[str] = []
        self.relinked: list[tuple[str, str]] = []
        self._by_rel: dict[str, ImageEntry] = {}
        self._meta: dict[str, _Meta] = {}
        self._corrupt: dict[str, str] = {}       # rel -> message
        self._newer: set[str] = set()
        self._hash_cache: dict[str, tuple[int, int, str]] = {}   # rel -> (size, mtime_ns, sha)

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | os.PathLike, create: bool = True) -> Project:
        """Open (and with ``create`` initialise) the project of ``folder``.

        Raises :class:`OutputError` if the folder is missing or the sidecar cannot be created,
        :class:`RecordError` if ``.zsas/project.json`` is corrupt or from a newer version.
        """
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise OutputError(f"{root}: not a folder; open a folder of images")
        root = root.resolve()
        store = Store(root)
        try:
            settings = store.read_or_create_project_file(create)
        except OutputError as exc:
            raise OutputError(f"{root}: cannot create the annotation folder {store.dir} ({exc})") from exc
        proj = cls(root, store, settings)
        atomic.sweep_temp_files(store.dir)      # left by a process killed mid-save, long ago
        proj._scan()
        return proj

    def _in_mvtec_ground_truth(self, rel: str) -> bool:
        """True for files under ``<category>/ground_truth/`` beside a ``<category>/test/`` folder
        (an MVTec AD dataset opened at its root: the masks are labels, not images)."""
        parts = rel.split("/")[:-1]
        return any(part == "ground_truth" and self.root.joinpath(*parts[:i], "test").is_dir()
                   for i, part in enumerate(parts))

    def _scan(self) -> None:
        exclude = [e.strip("/") + "/" for e in self.settings.get("exclude", []) if e.strip("/")]
        for path in find_images(self.root):
            rel = path.relative_to(self.root).as_posix()
            if any(rel.startswith(e) for e in exclude) or self._in_mvtec_ground_truth(rel):
                continue
            try:    # e.g. a backslash in a file name: a path separator on Windows, never stored
                AnnotationRecord.fresh(rel).check(str(path))
            except RecordError as exc:
                self.problems.append(f"{exc}; this image is left out of the project: rename the file")
                continue
            self.images.append(ImageEntry(rel, path))
        self.images.sort(key=lambda e: e.rel)
        self._by_rel = {e.rel: e for e in self.images}
        for rel, path in self.store.record_files():
            try:
                self._index(rel, self.store.read_record_json(rel))
            except NewerSchemaError as exc:
                self._newer.add(rel)
                self.problems.append(str(exc))
            except RecordError as exc:
                self._corrupt[rel] = str(exc)
                self.problems.append(f"{exc} (kept on disk; it is moved aside if this image is saved again)")
        self.orphans = sorted(r for r in list(self._meta) + list(self._corrupt) if r not in self._by_rel)
        if self.orphans:
            self._relink()

    def _index(self, rel: str, data) -> AnnotationRecord:
        source = str(self.store.record_path(rel))
        rec = AnnotationRecord.from_dict(data, source)
        if rec.rel != rel:
            raise RecordError(f"{source}: field 'image': {rec.rel!r} does not match the record's "
                              f"location ({rel!r})")
        self._meta[rel] = _Meta(rec.status, rec.defect_class, mask_file_of(data), rec.image_hash,
                                rec.image_bytes)
        return rec

    def _relink(self) -> None:
        """Move orphan records to images with the same file bytes and no record of their own."""
        free = [e for e in self.images if e.rel not in self._meta and e.rel not in self._corrupt
                and e.rel not in self._newer]
        for old in list(self.orphans):
            meta = self._meta.get(old)
            if meta is None or meta.image_hash is None:
                continue
            for entry in free:
                try:
                    if meta.image_bytes is not None and entry.path.stat().st_size != meta.image_bytes:
                        continue
                    if self._file_hash(entry) != meta.image_hash:
                        continue
                    self._move_record(old, entry.rel)
                except (OSError, RecordError, ImageReadError) as exc:
                    self.problems.append(f"cannot re-link the record of {old} to {entry.rel}: {exc}")
                    break
                free.remove(entry)
                self.orphans.remove(old)
                self.relinked.append((old, entry.rel))
                break

    def _move_record(self, old: str, new: str) -> None:
        """Copy the record of ``old`` to ``new`` (mask first, then JSON), then delete the old."""
        rec = self.load(old)
        rec.rel = new
        rec.provenance = {**rec.provenance, "renamed_from": old}
        self._write(rec)
        old_mask = self._meta.pop(old).mask_file
        self.store.delete_record(old)
        if old_mask:
            self.store.delete_masks_except(old, None)

    # -- queries ---------------------------------------------------------------------------------
    def entry(self, rel: str) -> ImageEntry:
        try:
            return self._by_rel[rel]
        except KeyError:
            raise KeyError(f"{rel!r} is not an image of the project {self.root}") from None

    def has_record(self, rel: str) -> bool:
        """True when a readable record of ``rel`` is stored."""
        return rel in self._meta

    def has_mask(self, rel: str) -> bool:
        """True when the stored record of ``rel`` has a mask (possibly empty); cheap."""
        meta = self._meta.get(rel)
        return bool(meta and meta.mask_file)

    def status(self, rel: str) -> str:
        """Stored status of ``rel`` (``unreviewed`` when no readable record exists); cheap."""
        meta = self._meta.get(rel)
        return meta.status if meta else "unreviewed"

    def problem_for(self, rel: str) -> str | None:
        """Why the record of ``rel`` cannot be read, or None."""
        return self._corrupt.get(rel) or (f"record of {rel} is from a newer zsas-gui" if rel in self._newer
                                          else None)

    def summary(self) -> dict[str, int]:
        """Number of images per status (every status present, images without a record count
        as unreviewed); orphans are not counted."""
        counts = dict.fromkeys(STATUSES, 0)
        for e in self.images:
            counts[self.status(e.rel)] += 1
        return counts

    # -- load / save -----------------------------------------------------------------------------
    def load(self, rel: str) -> AnnotationRecord:
        """The stored record of ``rel`` with its mask, or a fresh unreviewed one when none is
        stored or the stored one is unreadable (then :attr:`problems` says why). A record written
        by another process since :meth:`open` is read too."""
        if rel in self._corrupt or rel in self._newer or (
                rel not in self._meta and not self.store.record_path(rel).exists()):
            return AnnotationRecord.fresh(rel)
        try:
            data = self.store.read_record_json(rel)
            rec = self._index(rel, data)
            mask_file = mask_file_of(data)
            if mask_file:
                mask = self.store.read_mask(rel, mask_file)
                if rec.image_size is not None and mask.shape != tuple(rec.image_size):
                    raise RecordError(f"{self.store.mask_path(rel, mask_file)}: mask is "
                                      f"{mask.shape[1]}x{mask.shape[0]} px but the record says "
                                      f"{rec.image_size[1]}x{rec.image_size[0]}")
                rec.mask = mask
            return rec
        except NewerSchemaError as exc:
            self._meta.pop(rel, None)
            self._newer.add(rel)
            self.problems.append(str(exc))
        except (RecordError, ImageReadError) as exc:
            self._meta.pop(rel, None)
            self._corrupt[rel] = str(exc)
            self.problems.append(f"{exc} (kept on disk; it is moved aside if this image is saved again)")
        return AnnotationRecord.fresh(rel)

    def save(self, rec: AnnotationRecord) -> None:
        """Store ``rec`` now, atomically (mask PNG, then JSON; see :mod:`.store`).

        Fills ``updated`` (and ``created`` the first time), ``image_hash``, ``image_bytes`` and
        ``image_size`` (from the mask). Raises RecordError for an invalid record,
        NewerSchemaError when the stored record is from a newer version, OutputError when
        the disk refuses the write (the previous record is then intact).
        """
        rec.check(f"record of {rec.rel}")
        if rec.rel in self._newer:
            raise NewerSchemaError(f"{self.store.record_path(rec.rel)}: written by a newer zsas-gui; "
                                   f"refusing to overwrite it")
        if rec.rel in self._corrupt:
            moved = self.store.move_aside(rec.rel)
            self.problems.append(f"{self.store.record_path(rec.rel)}: the corrupt record was moved "
                                 f"aside to {moved.name} before saving a new one")
            del self._corrupt[rec.rel]
        entry = self._by_rel.get(rec.rel)
        if entry is not None and entry.path.exists():
            rec.image_hash = self._file_hash(entry)
            rec.image_bytes = entry.path.stat().st_size
        if rec.mask is not None:
            rec.image_size = tuple(int(v) for v in rec.mask.shape)
        stamp = now_iso()
        rec.created = rec.created or stamp
        rec.updated = stamp
        self._write(rec)

    def _write(self, rec: AnnotationRecord) -> None:
        mask_file = self.store.write_mask(rec.rel, rec.mask) if rec.mask is not None else None
        data = rec.to_dict(mask_file)
        self.store.write_record_json(rec.rel, data)
        self._meta[rec.rel] = _Meta(rec.status, rec.defect_class, mask_file, rec.image_hash, rec.image_bytes)
        self.store.delete_masks_except(rec.rel, mask_file)

    def _file_hash(self, entry: ImageEntry) -> str:
        st = entry.path.stat()
        cached = self._hash_cache.get(entry.rel)
        if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
            return cached[2]
        sha = file_sha256(entry.path)
        self._hash_cache[entry.rel] = (st.st_size, st.st_mtime_ns, sha)
        return sha

    # -- export ----------------------------------------------------------------------------------
    def export_items(self, include: Iterable[str]) -> list[ExportItem]:
        """The images whose status is in ``include``, as :class:`ExportItem` (mask paths point
        into the store). Images with an unreadable record are left out (see :attr:`problems`)."""
        include = set(include)
        unknown = include - set(STATUSES)
        if unknown:
            raise ValueError(f"unknown status {sorted(unknown)}; choose from {', '.join(STATUSES)}")
        items = []
        for e in self.images:
            if e.rel in self._corrupt or e.rel in self._newer or self.status(e.rel) not in include:
                continue
            if e.rel not in self._meta:
                rec, mask_file = AnnotationRecord.fresh(e.rel), None
            else:
                try:
                    data = self.store.read_record_json(e.rel)
                    rec, mask_file = self._index(e.rel, data), mask_file_of(data)
                except NewerSchemaError as exc:   # changed on disk since open
                    self._meta.pop(e.rel, None)
                    self._newer.add(e.rel)
                    self.problems.append(str(exc))
                    continue
                except RecordError as exc:
                    self._meta.pop(e.rel, None)
                    self._corrupt[e.rel] = str(exc)
                    self.problems.append(str(exc))
                    continue
                if rec.status not in include:
                    continue
            items.append(ExportItem(
                rel=e.rel, image_path=e.path, defect_class=rec.defect_class, status=rec.status,
                mask_path=self.store.mask_path(e.rel, mask_file) if mask_file else None,
                provenance=rec.provenance))
        return items

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, images={len(self.images)}, records={len(self._meta)})"

