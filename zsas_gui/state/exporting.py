"""The project's side of an export: which images go out, and whether the records changed while
the export read them (another writer saved: the export reads them again).

A record is read without a lock here; its mask is read later by the export's validation, so a
save in between can replace (and delete) that mask: :func:`records_changed` tells the caller to
start again (``zsas export`` does, up to three times).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..core.errors import RecordError
from ..core.export.common import ExportItem
from .record import STATUSES, AnnotationRecord, NewerSchemaError, mask_file_of


def export_items(proj, include: Iterable[str]) -> list[ExportItem]:
    """The images of ``proj`` (a :class:`.project.Project`) whose status is in ``include``.

    Left out, each listed in ``proj.problems``: images with an unreadable record, and images
    changed since their record was saved (:meth:`Project.image_changed`: "image changed since
    review")."""
    include = set(include)
    unknown = include - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown status {sorted(unknown)}; choose from {', '.join(STATUSES)}")
    items, stamps = [], {}
    for e in proj.images:
        if e.rel in proj._corrupt or e.rel in proj._newer or proj.status(e.rel) not in include:
            continue
        src = proj._source.get(e.rel, e.rel)
        if e.rel not in proj._meta:
            rec, mask_file = AnnotationRecord.fresh(e.rel), None
        else:
            try:
                stamps[src] = _stamp(proj.store.record_path(src))
                data = proj.store.read_record_json(src)
                rec, mask_file = proj._index(src, data), mask_file_of(data)
            except NewerSchemaError as exc:   # changed on disk since open
                proj._meta.pop(e.rel, None)
                proj._newer.add(e.rel)
                proj.problems.append(str(exc))
                continue
            except RecordError as exc:
                proj._meta.pop(e.rel, None)
                proj._corrupt[e.rel] = str(exc)
                proj.problems.append(str(exc))
                continue
            if src != e.rel:
                proj._meta[e.rel] = proj._meta[src]
            if rec.status not in include:
                continue
            if proj.image_changed(e.rel):
                proj.problems.append(f"{e.path}: image changed since review (it is not the file the "
                                     f"{rec.status} annotation was made on); left out of the export: "
                                     f"review it again")
                continue
        items.append(ExportItem(
            rel=e.rel, image_path=e.path, defect_class=rec.defect_class, status=rec.status,
            mask_path=proj.store.mask_path(src, mask_file) if mask_file else None,
            provenance=rec.provenance))
    proj._export_stamps = stamps
    return items


def records_changed(proj) -> bool:
    """Whether any record read by the last :func:`export_items` of ``proj`` changed since."""
    return any(_stamp(proj.store.record_path(src)) != stamp
               for src, stamp in getattr(proj, "_export_stamps", {}).items())


def _stamp(path) -> tuple[int, int, int] | None:
    """(inode, size, mtime_ns) of a file, None when it is gone: an atomic save changes the inode."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
