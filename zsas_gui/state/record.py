"""One image's annotation as stored in the project sidecar (``.zsas/records/<rel>.json``).

The JSON holds everything but the mask pixels; the mask is a 0/255 PNG under ``.zsas/masks/``
whose file name the JSON names (``mask_file``). :meth:`AnnotationRecord.from_dict` validates
every field and raises :class:`RecordError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from ..core.errors import RecordError
from ..core.types import MethodParams, Prompts, TextPrompts
from ..vocabulary import DEFAULT_CLASS, MASK_SOURCES, STATUSES

#: Version of the record and project JSON written by this code. Older versions are read
#: (there are none yet); a newer one is refused with a message naming the file.
SCHEMA_VERSION = 1



def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds, e.g. ``2026-01-02T03:04:05.678+00:00``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def default_defect_class(rel: str) -> str:
    """Default class of an image: its parent folder's name (``test/crack/001.png`` -> ``crack``);
    :data:`DEFAULT_CLASS` at the project root or when the folder is called ``good``."""
    parent = PurePosixPath(rel).parent.name
    return parent if parent and parent != "good" else DEFAULT_CLASS


@dataclass(eq=False)
class AnnotationRecord:
    """The stored annotation of one image.

    ``mask``: (H, W) bool, True = defect, image pixels (row = y), or None when no mask exists.
    ``image_hash``: SHA-256 hex of the image file's bytes (used to re-link renamed images);
    ``image_size``: (H, W) of the image the mask was drawn on; ``image_bytes``: the image file's
    size (a cheap first filter when re-linking); ``image_mtime_ns``: the image file's
    modification time then (size and time unchanged: the image is unchanged, without hashing).
    The store fills these four on save. ``revision``: 1 for the first save, +1 on each save
    (the stored value; :meth:`Project.save(rec, expect_revision=...)` compares it).
    """

    rel: str
    status: str = "unreviewed"
    defect_class: str = DEFAULT_CLASS
    mask: np.ndarray | None = field(default=None, repr=False)
    prompts: Prompts | None = field(default=None, repr=False)
    params: MethodParams = field(default_factory=MethodParams, repr=False)
    text_prompts: TextPrompts = field(default_factory=TextPrompts, repr=False)
    image_score: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    updated: str | None = None
    image_hash: str | None = None
    image_size: tuple[int, int] | None = None
    image_bytes: int | None = None
    image_mtime_ns: int | None = None
    revision: int = 0

    @classmethod
    def fresh(cls, rel: str) -> AnnotationRecord:
        """An unreviewed record with the default class and no mask (nothing on disk yet)."""
        return cls(rel=rel, defect_class=default_defect_class(rel))

    @property
    def mask_source(self) -> str | None:
        return self.provenance.get("mask_source")

    def check(self, source: str = "record") -> None:
        """Validate the in-memory record; raises :class:`RecordError` naming ``source`` and field."""
        def bad(name: str, why: str) -> RecordError:
            return RecordError(f"{source}: field '{name}': {why}")

        if isinstance(self.rel, str) and not _utf8(self.rel):
            raise bad("image", f"the file name {self.rel.encode('utf-8', 'surrogateescape')!r} is not "
                               f"valid UTF-8 and cannot be stored; rename the file")
        if not isinstance(self.rel, str) or not self.rel or not _safe_rel(self.rel):
            raise bad("image", f"must be a relative path inside the project, got {self.rel!r}")
        if self.status not in STATUSES:
            raise bad("status", f"must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if not isinstance(self.defect_class, str) or not self.defect_class.strip():
            raise bad("defect_class", f"must be a non-empty string, got {self.defect_class!r}")
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.ndim != 2 or m.size == 0:
                raise bad("mask", f"must be a non-empty (H, W) array, got shape {m.shape}")
            if self.image_size is not None and tuple(m.shape) != tuple(self.image_size):
                raise bad("mask", f"shape {m.shape} differs from image_size {tuple(self.image_size)}")
        if self.image_score is not None and not _finite_number(self.image_score):
            raise bad("image_score", f"must be a finite number or null, got {self.image_score!r}")
        if self.prompts is not None and not np.isfinite(np.asarray(self.prompts.points)).all():
            raise bad("prompts", "points must be finite (x, y) pixel coordinates")
        if not isinstance(self.provenance, dict):
            raise bad("provenance", "must be an object")
        try:   # stored as is: must stay writable as strict JSON (a file may hold NaN/Infinity)
            json.dumps(self.provenance, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise bad("provenance", f"must be plain JSON without NaN or Infinity ({exc})") from exc
        src = self.provenance.get("mask_source")
        if src is not None and src not in MASK_SOURCES:
            raise bad("provenance.mask_source", f"must be one of {', '.join(MASK_SOURCES)}, got {src!r}")
        for name in ("created", "updated"):
            value = getattr(self, name)
            if value is not None:
                _parse_time(value, lambda why, n=name: bad(n, why))

    def to_dict(self, mask_file: str | None = None) -> dict[str, Any]:
        """The JSON object stored on disk (no pixels: ``mask_file`` names the mask PNG)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "image": self.rel,
            "image_sha256": self.image_hash,
            "image_size": list(self.image_size) if self.image_size is not None else None,
            "image_bytes": self.image_bytes,
            "image_mtime_ns": self.image_mtime_ns,
            "revision": self.revision,
            "status": self.status,
            "defect_class": self.defect_class,
            "mask_file": mask_file,
            "prompts": self.prompts.to_dict() if self.prompts is not None else None,
            "params": self.params.to_dict(),
            "text_prompts": self.text_prompts.to_dict(),
            "image_score": None if self.image_score is None else float(self.image_score),
            "provenance": self.provenance,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "record") -> AnnotationRecord:
        """Parse a stored record (mask left None; see :func:`mask_file_of`).

        Raises :class:`RecordError` ``"<source>: field '<name>': <why>"`` on any malformed field,
        and a distinct message for a record written by a newer version.
        """
        def bad(name: str, why: str) -> RecordError:
            return RecordError(f"{source}: field '{name}': {why}")

        if not isinstance(d, dict):
            raise RecordError(f"{source}: not a JSON object")
        version = d.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise bad("schema_version", f"must be a positive integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"{source}: written by a newer zsas-gui (schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}); upgrade zsas-gui to open it")
        for name in ("image", "status", "defect_class", "params", "text_prompts", "provenance"):
            if name not in d:
                raise bad(name, "missing")
        image_size = d.get("image_size")
        if image_size is not None:
            if (not isinstance(image_size, list) or len(image_size) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                               for v in image_size)):
                raise bad("image_size", f"must be [H, W] positive integers or null, got {image_size!r}")
            image_size = (image_size[0], image_size[1])
        image_hash = d.get("image_sha256")
        if image_hash is not None and not (isinstance(image_hash, str) and len(image_hash) == 64
                                           and all(c in "0123456789abcdef" for c in image_hash)):
            raise bad("image_sha256", f"must be 64 lowercase hex digits or null, got {image_hash!r}")
        image_bytes = d.get("image_bytes")
        if image_bytes is not None and not (isinstance(image_bytes, int) and not isinstance(image_bytes, bool)
                                            and image_bytes >= 0):
            raise bad("image_bytes", f"must be a non-negative integer or null, got {image_bytes!r}")
        image_mtime_ns, revision = d.get("image_mtime_ns"), d.get("revision", 0)
        if image_mtime_ns is not None and not _plain_int(image_mtime_ns):
            raise bad("image_mtime_ns", f"must be an integer or null, got {image_mtime_ns!r}")
        if not (_plain_int(revision) and revision >= 0):
            raise bad("revision", f"must be a non-negative integer, got {revision!r}")
        mask_file = d.get("mask_file")
        if mask_file is not None and not (isinstance(mask_file, str) and mask_file
                                          and "/" not in mask_file and "\\" not in mask_file
                                          and not mask_file.startswith(".")):
            raise bad("mask_file", f"must be a plain file name or null, got {mask_file!r}")
        _check_json_types(bad, d)
        prompts = _parse(bad, "prompts", d.get("prompts"), Prompts.from_dict, allow_none=True)
        params = _parse(bad, "params", d["params"], MethodParams.from_dict)
        text_prompts = _parse(bad, "text_prompts", d["text_prompts"], TextPrompts.from_dict)
        score = d.get("image_score")
        if isinstance(score, bool):
            raise bad("image_score", f"must be a number or null, got {score!r}")
        rec = cls(rel=d["image"], status=d["status"], defect_class=d["defect_class"], prompts=prompts,
                  params=params, text_prompts=text_prompts, image_score=score,
                  provenance=d["provenance"], created=d.get("created"), updated=d.get("updated"),
                  image_hash=image_hash, image_size=image_size, image_bytes=image_bytes,
                  image_mtime_ns=image_mtime_ns, revision=revision)
        rec.check(source)
        return rec


class NewerSchemaError(RecordError):
    """A record or project file written by a newer version of zsas-gui."""


def mask_file_of(d: dict[str, Any]) -> str | None:
    """The mask file name a validated record dict references (None: no mask)."""
    return d.get("mask_file")


def _parse(bad, name, value, parser, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, dict):
        raise bad(name, f"must be an object, got {type(value).__name__}")
    try:
        return parser(value)
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(name, f"invalid ({exc})") from exc


#: Largest accepted |coordinate| (pixels) or |score| in a stored record: well inside float32.
_MAX_MAGNITUDE = 1e9


def _finite_number(v: Any, limit: float = math.inf) -> bool:
    """A JSON number (not a bool), finite, with ``|v| <= limit`` (huge ints are refused, not raised)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v) and abs(v) <= limit
    except OverflowError:           # an int beyond float range
        return False


def _check_json_types(bad, d: dict[str, Any]) -> None:
    """JSON types of the nested objects, checked before the dataclasses see them (their own
    checks assume the right types: a number where a string belongs would escape as an
    AttributeError, a huge int as an OverflowError)."""
    import dataclasses

    p = d.get("prompts")
    if isinstance(p, dict):
        points, labels, scores = p.get("points"), p.get("labels"), p.get("scores")
        if not (isinstance(points, list) and all(
                isinstance(xy, list) and len(xy) == 2 and all(_finite_number(v, _MAX_MAGNITUDE) for v in xy)
                for xy in points)):
            raise bad("prompts", "points must be a list of [x, y] finite pixel coordinates")
        if not (isinstance(labels, list) and all(type(v) is int and v in (0, 1) for v in labels)):
            raise bad("prompts", "labels must be a list of 0 (negative) or 1 (positive)")
        if scores is not None and not (isinstance(scores, list) and all(
                v is None or _finite_number(v, _MAX_MAGNITUDE) for v in scores)):
            raise bad("prompts", "scores must be a list of finite numbers or null")
    for name, cls in (("params", MethodParams), ("text_prompts", TextPrompts)):
        obj = d.get(name)
        if not isinstance(obj, dict):
            continue                    # _parse names the field
        for f in dataclasses.fields(cls):
            if f.name not in obj:
                continue
            v, default = obj[f.name], f.default
            if isinstance(default, bool):
                ok = isinstance(v, bool)
            elif isinstance(default, int):
                ok = type(v) is int and _finite_number(v)
            elif isinstance(default, float) or default is None:
                ok = (default is None and v is None) or _finite_number(v)
            elif isinstance(default, str):
                ok = isinstance(v, str)
            elif isinstance(default, tuple):
                ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
            else:
                ok = True
            if not ok:
                raise bad(f"{name}.{f.name}", f"wrong type or value: {v!r}"[:200])


def _parse_time(value: Any, bad) -> datetime:
    if not isinstance(value, str):
        raise bad(f"must be an ISO 8601 timestamp string, got {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise bad(f"not an ISO 8601 timestamp: {value!r}") from exc


def _plain_int(v: Any) -> bool:
    """A JSON integer (not a bool) within 64 bits."""
    return type(v) is int and -(2 ** 63) <= v < 2 ** 63


def _utf8(text: str) -> bool:
    """False for a name holding undecodable bytes (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _safe_rel(rel: str) -> bool:
    p = PurePosixPath(rel)
    return (not p.is_absolute() and "\\" not in rel and "\x00" not in rel
            and all(part not in ("", ".", "..") for part in rel.split("/")))
