"""The documents of the open project held in memory (each with its undo history), loaded from
and saved to the project store (atomic, through :class:`~zsas_gui.state.project.Project`)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..core.errors import ZsasError
from ..state.document import Document, document_from_record, record_fields

#: Documents (with their undo history) kept in memory, most recently opened last.
DOC_CACHE = 16


class OpenDocuments:
    def __init__(self, project: Any = None, max_docs: int = DOC_CACHE):
        self.project = project
        self.max_docs = max_docs
        self._docs: OrderedDict[str, Document] = OrderedDict()
        self._records: dict[str, Any] = {}
        self._prov: dict[str, dict] = {}

    def get(self, rel: str) -> Document | None:
        return self._docs.get(rel)

    def status(self, rel: str) -> str:
        """The review status of ``rel``: its open document's, else the stored one."""
        doc = self._docs.get(rel)
        if doc is not None:
            return doc.status
        return self.project.status(rel) if self.project is not None else "unreviewed"

    def open(self, rel: str, hw: tuple[int, int], defaults: tuple | None) -> tuple[Document, str | None]:
        """The document of ``rel`` (image (H, W) = ``hw``): the one in memory, else the stored
        record, else a fresh one started from ``defaults`` (params, text prompts). Returns
        (document, a warning or None)."""
        warning = None
        doc = self._docs.pop(rel, None)
        if doc is None:
            rec = self.project.load(rel)
            self._records[rel] = rec
            if rec.status != "unreviewed" and self.project.image_changed(rel):
                warning = (f"{rel}: image changed since review (the stored {rec.status} annotation was made "
                           f"on another file); review it again: it is left out of exports until saved")
            try:
                doc = document_from_record(rec, hw)
            except ValueError as exc:
                warning = f"{rel}: {exc}; starting from an empty annotation"
                rec.mask, rec.status = None, "unreviewed"
                doc = document_from_record(rec, hw)
            if not self.project.has_record(rel) and defaults is not None:
                doc.set_defaults(*defaults)
        self._docs[rel] = doc
        while len(self._docs) > self.max_docs:
            old_rel, old = next(iter(self._docs.items()))
            if old.dirty:           # never forget unsaved work: it is saved by the next flush
                break
            del self._docs[old_rel]
        return doc, warning

    def note_provenance(self, rel: str, provenance: dict) -> None:
        """Models, parameters and timings of the last result, stored with the record."""
        self._prov[rel] = {k: v for k, v in provenance.items() if k != "prompts"}

    def stored_score(self, rel: str) -> float | None:
        """The image score saved in ``rel``'s record (read from its JSON only, no mask)."""
        try:
            score = self.project.store.read_record_json(rel).get("image_score")
        except (ZsasError, OSError, ValueError, AttributeError):
            return None
        return float(score) if isinstance(score, (int, float)) else None

    def flush(self) -> list[str]:
        """Save every document changed since its last save; returns the error messages."""
        errors = []
        if self.project is None:
            return errors
        for rel, doc in list(self._docs.items()):
            if not doc.dirty:
                continue
            rec = self._records.get(rel) or self.project.load(rel)
            for k, v in record_fields(doc, {**rec.provenance, **self._prov.get(rel, {})}).items():
                setattr(rec, k, v)
            try:
                self.project.save(rec)
            except (ZsasError, OSError) as exc:
                errors.append(f"could not save {rel}: {exc}")
                continue
            self._records[rel] = rec
            doc.dirty = False
        return errors
