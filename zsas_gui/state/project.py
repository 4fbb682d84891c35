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

Several writers at once (the app, ``zsas label``, ``zsas label --ray`` workers, in any number of
processes and threads): each save and load holds the record's lock (:mod:`.store`), so saves
never interleave. A person's save (the app) stores what they decided, whatever was stored; a
batch writer that must not overwrite a review uses a compare-and-swap::

    rec = proj.load(rel)                        # rec.revision: the stored revision
    ...                                         # long computation, no lock held
    try:
        proj.save(rec, expect_revision=rec.revision)
    except RecordConflictError:                 # saved by someone else meanwhile: nothing written
        ...

A reviewed image whose file changed since its record was saved (other bytes: size, then time,
then SHA-256 compared) is listed by :meth:`Project.image_changed` and left out of exports.
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
from ..vocabulary import STATUSES
from .record import AnnotationRecord, NewerSchemaError, mask_file_of, now_iso
from .store import RecordConflictError, Store, file_sha256, printable

__all__ = ["ImageEntry", "Project", "RecordConflictError"]
#: Most prompt points a loaded record keeps (more freeze the app's drawing; the rest are
#: dropped on load and the problem is listed).
MAX_PROMPT_POINTS = 1000


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
    image_mtime_ns: int | None = None


class Project:
    """Use :meth:`open`. Attributes: ``root`` (Path), ``images`` (list[ImageEntry], sorted by
    rel), ``problems`` (list[str]), ``orphans`` (list[str] record rels without an image),
    ``relinked`` (list[(old_rel, new_rel)] re-linked by content on open)."""

    def __init__(self, root: Path, store: Store, settings: dict, writable: bool = True):
        self.root = root
        self.writable = writable
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
        self._source: dict[str, str] = {}   # rel -> rel of the record it reads (relinked read-only)
        self._export_stamps: dict[str, tuple | None] = {}   # record rel -> its file's stamp (exporting)

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
        proj = cls(root, store, settings, writable=create)
        if create:
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
        for path in find_images(self.root, self.problems):
            rel = path.relative_to(self.root).as_posix()
            if any(rel.startswith(e) for e in exclude) or self._in_mvtec_ground_truth(rel):
                continue
            try:    # e.g. a backslash in a file name: a path separator on Windows, never stored
                AnnotationRecord.fresh(rel).check(printable(path))
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
                                rec.image_bytes, rec.image_mtime_ns)
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
                    if self.writable:
                        self._move_record(old, entry.rel)
                    else:                   # read-only (export): re-linked in memory only
                        self._source[entry.rel] = old
                        self._meta[entry.rel] = self._meta[old]
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
        self._write(rec, expect_revision=0)     # new has no record: never overwrite one made meanwhile
        self._meta.pop(old)
        with self.store.record_lock(old):
            self.store.delete_record(old)
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

    def defect_class(self, rel: str) -> str:
        """Stored defect class of ``rel`` ("" when none is stored); cheap."""
        meta = self._meta.get(rel)
        return meta.defect_class if meta else ""

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
        """The stored record of ``rel`` with its mask (read under the record's shared lock, so a
        concurrent save never shows half), or a fresh unreviewed one when none is stored or the
        stored one is unreadable (then :attr:`problems` says why). A record stored by another
        process since :meth:`open` is read too. More than :data:`MAX_PROMPT_POINTS` prompt
        points are cut to that many (listed in :attr:`problems`)."""
        src = self._source.get(rel, rel)
        if rel in self._newer or rel in self._corrupt or (
                src not in self._meta and not self.store.record_path(src).is_file()):
            return AnnotationRecord.fresh(rel)
        try:
            with self.store.record_lock(src, shared=True):
                data = self.store.read_record_json(src)
                rec = self._index(src, data)
                mask_file = mask_file_of(data)
                if mask_file:
                    mask = self.store.read_mask(src, mask_file)
                    if rec.image_size is not None and mask.shape != tuple(rec.image_size):
                        raise RecordError(f"{self.store.mask_path(src, mask_file)}: mask is "
                                          f"{mask.shape[1]}x{mask.shape[0]} px but the record says "
                                          f"{rec.image_size[1]}x{rec.image_size[0]}")
                    rec.mask = mask
            if src != rel:
                rec.rel, self._meta[rel] = rel, self._meta[src]
            self._cap_prompts(rec)
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

    def _cap_prompts(self, rec: AnnotationRecord) -> None:
        p = rec.prompts
        if p is not None and len(p) > MAX_PROMPT_POINTS:
            self.problems.append(f"{self.store.record_path(rec.rel)}: {len(p)} prompt points; only the "
                                 f"first {MAX_PROMPT_POINTS} are kept (saving the image stores them)")
            rec.prompts = type(p)(p.points[:MAX_PROMPT_POINTS], p.labels[:MAX_PROMPT_POINTS],
                                  None if p.scores is None else p.scores[:MAX_PROMPT_POINTS])

    def save(self, rec: AnnotationRecord, expect_revision: int | None = None) -> None:
        """Store ``rec`` now, atomically (mask PNG, then JSON; see :mod:`.store`), holding the
        record's lock from reading the stored revision to deleting the replaced mask.

        ``expect_revision``: a compare-and-swap: raise :class:`RecordConflictError` and write
        nothing unless the stored record's revision is this (0: no record stored); pass the
        ``revision`` of the record you loaded. Without it the save replaces whatever is stored.

        Fills ``updated`` (and ``created`` the first time), ``revision``, ``image_hash``,
        ``image_bytes``, ``image_mtime_ns`` and ``image_size`` (from the mask). Raises
        RecordError for an invalid record, NewerSchemaError when the stored record is from a
        newer version, OutputError when the disk refuses the write (the previous record is
        then intact) or a link in ``.zsas`` leads out of it.
        """
        rec.check(f"record of {rec.rel}")
        if rec.rel in self._newer:
            raise NewerSchemaError(f"{self.store.record_path(rec.rel)}: written by a newer zsas-gui; "
                                   f"refusing to overwrite it")
        entry = self._by_rel.get(rec.rel)
        if entry is not None and entry.path.exists():
            st = entry.path.stat()
            rec.image_hash = self._file_hash(entry)
            rec.image_bytes, rec.image_mtime_ns = st.st_size, st.st_mtime_ns
        if rec.mask is not None:
            rec.image_size = tuple(int(v) for v in rec.mask.shape)
        stamp = now_iso()
        rec.created = rec.created or stamp
        rec.updated = stamp
        self._write(rec, expect_revision)

    def _write(self, rec: AnnotationRecord, expect_revision: int | None = None) -> None:
        with self.store.record_lock(rec.rel):
            stored = self._stored_revision(rec.rel, cas=expect_revision is not None)
            if expect_revision is not None and stored != expect_revision:
                raise RecordConflictError(
                    f"{self.store.record_path(rec.rel)}: saved by another writer meanwhile (revision "
                    f"{stored}, expected {expect_revision}); nothing written")
            rec.revision = stored + 1
            mask_file = self.store.write_mask(rec.rel, rec.mask) if rec.mask is not None else None
            data = rec.to_dict(mask_file)
            self.store.write_record_json(rec.rel, data)
            self._meta[rec.rel] = _Meta(rec.status, rec.defect_class, mask_file, rec.image_hash,
                                        rec.image_bytes, rec.image_mtime_ns)
            self._source.pop(rec.rel, None)
            self.store.delete_masks_except(rec.rel, mask_file)

    def _stored_revision(self, rel: str, cas: bool) -> int:
        """Revision of the record stored now (0: none), read under its lock. A corrupt one is
        moved aside (a compare-and-swap writer gets a conflict instead: it never decides
        that)."""
        if not self.store.record_path(rel).is_file():
            self._corrupt.pop(rel, None)
            return 0
        try:
            data = self.store.read_record_json(rel)
            stored = AnnotationRecord.from_dict(data, str(self.store.record_path(rel)))
            if stored.rel != rel:
                raise RecordError(f"{self.store.record_path(rel)}: field 'image': {stored.rel!r} does not "
                                  f"match the record's location ({rel!r})")
            return stored.revision
        except NewerSchemaError:
            self._newer.add(rel)
            raise
        except RecordError as exc:
            if cas:
                raise RecordConflictError(f"{exc}; left as it is") from exc
            moved = self.store.move_aside(rel)
            self.problems.append(f"{self.store.record_path(rel)}: the corrupt record was moved "
                                 f"aside to {moved.name} before saving a new one")
            self._corrupt.pop(rel, None)
            return 0

    def image_changed(self, rel: str) -> bool:
        """True when the image file of ``rel`` is no longer the one its stored record was made on
        (size differs, or size and time differ and the SHA-256 too). False without a record or
        a stored hash (nothing to compare) or without the file."""
        meta, entry = self._meta.get(rel), self._by_rel.get(rel)
        if meta is None or meta.image_hash is None or entry is None:
            return False
        try:
            st = entry.path.stat()
            if meta.image_bytes is not None and st.st_size != meta.image_bytes:
                return True
            if meta.image_mtime_ns is not None and st.st_mtime_ns == meta.image_mtime_ns:
                return False
            return self._file_hash(entry) != meta.image_hash
        except OSError:
            return False

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
        into the store); see :func:`.exporting.export_items`."""
        from .exporting import export_items

        return export_items(self, include)

    def records_changed_since_export_items(self) -> bool:
        """True when a record read by the last :meth:`export_items` was saved again since (its
        mask may have been replaced: read the items again)."""
        from .exporting import records_changed

        return records_changed(self)

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, images={len(self.images)}, records={len(self._meta)})"

