"""The sidecar folder's files and the crash-safe write order (used by :mod:`.project`).

Layout of ``FOLDER/.zsas/``::

    project.json                         {"schema_version": 1, "created": ..., "exclude": [...]}
    records/<rel>.json                   one AnnotationRecord per image (no pixels)
    masks/<rel>.<maskhash16>.png         its mask, 0/255 single-channel PNG

Save order for one record: (1) the mask PNG under a content-addressed name (a new file; the
old mask is untouched), (2) the record JSON, atomically replacing the old one, (3) delete the
masks of that image the JSON no longer names. A crash after (1) leaves the old JSON naming the
old mask: the last good record stays whole; the stray new mask is deleted by the next save.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import OutputError, RecordError
from ..core.io import atomic
from ..core.io.atomic import atomic_write_json
from ..core.io.imageio import encode_png, load_mask
from .record import SCHEMA_VERSION, NewerSchemaError, now_iso

STORE_DIR = ".zsas"
#: Folders (relative to the project root) not scanned for images: MVTec ground-truth masks.
DEFAULT_EXCLUDE = ("ground_truth",)
MASK_HASH_LEN = 16


class Store:
    """Paths and low-level reads/writes inside ``root/.zsas``."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / STORE_DIR
        self.records = self.dir / "records"
        self.masks = self.dir / "masks"
        self.project_file = self.dir / "project.json"

    # -- project.json --------------------------------------------------------------------------
    def read_or_create_project_file(self, create: bool) -> dict[str, Any]:
        """The project settings; created with defaults when absent. Raises RecordError when
        the file is corrupt or written by a newer version (never overwritten)."""
        if not self.project_file.exists():
            data = {"schema_version": SCHEMA_VERSION, "created": now_iso(), "exclude": list(DEFAULT_EXCLUDE)}
            if create:
                atomic_write_json(self.project_file, data)
            return data
        try:
            data = json.loads(self.project_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:   # ValueError: JSON, UTF-8, huge ints
            raise RecordError(f"{self.project_file}: unreadable project file ({exc}); fix it or move "
                              f"it aside (annotations in {self.records} are kept)") from exc
        if not isinstance(data, dict):
            raise RecordError(f"{self.project_file}: not a JSON object; fix it or move it aside")
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RecordError(f"{self.project_file}: field 'schema_version': must be a positive "
                              f"integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"{self.project_file}: this project was written by a newer zsas-gui (schema "
                f"{version}, this one reads up to {SCHEMA_VERSION}); upgrade zsas-gui to open it")
        exclude = data.get("exclude", list(DEFAULT_EXCLUDE))
        if not isinstance(exclude, list) or not all(isinstance(e, str) for e in exclude):
            raise RecordError(f"{self.project_file}: field 'exclude': must be a list of folder names")
        data["exclude"] = exclude
        return data

    # -- records ---------------------------------------------------------------------------------
    def record_path(self, rel: str) -> Path:
        return self.records / f"{rel}.json"

    def record_files(self) -> list[tuple[str, Path]]:
        """(rel, path) of every record JSON on disk (temp and moved-aside files skipped)."""
        out = []
        if not self.records.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(self.records):
            for name in files:
                if name.endswith(".json") and not name.startswith("."):
                    path = Path(dirpath) / name
                    out.append((path.relative_to(self.records).as_posix()[:-len(".json")], path))
        return sorted(out)

    def read_record_json(self, rel: str) -> Any:
        """The parsed JSON of a record; RecordError when unreadable or not JSON."""
        path = self.record_path(rel)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:   # ValueError: JSON, UTF-8, huge ints
            raise RecordError(f"{path}: unreadable record ({exc})") from exc

    def write_record_json(self, rel: str, data: dict[str, Any]) -> None:
        atomic.atomic_write_json(self.record_path(rel), data)

    def move_aside(self, rel: str) -> Path:
        """Rename a record file to ``<name>.corrupt-<UTC timestamp>``; returns the new path."""
        src = self.record_path(rel)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        dst = src.with_name(f"{src.name}.corrupt-{stamp}")
        try:
            os.replace(src, dst)
        except OSError as exc:
            raise OutputError(f"cannot move the corrupt record {src} aside: {exc.strerror or exc}") from exc
        return dst

    def delete_record(self, rel: str) -> None:
        try:
            self.record_path(rel).unlink()
        except FileNotFoundError:
            pass

    # -- masks -----------------------------------------------------------------------------------
    def mask_path(self, rel: str, mask_file: str) -> Path:
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        return (self.masks / parent / mask_file) if parent else (self.masks / mask_file)

    def write_mask(self, rel: str, mask: np.ndarray) -> str:
        """Write ``mask`` ((H, W) bool) under its content-addressed name; returns the file name."""
        mask = np.asarray(mask).astype(bool)
        name = f"{rel.rsplit('/', 1)[-1]}.{mask_hash(mask)}.png"
        path = self.mask_path(rel, name)
        if not path.exists():
            atomic.atomic_write_bytes(path, encode_png(mask))
        return name

    def read_mask(self, rel: str, mask_file: str) -> np.ndarray:
        """(H, W) bool; ImageReadError when missing or unreadable."""
        return load_mask(self.mask_path(rel, mask_file))

    def mask_files(self, rel: str) -> list[str]:
        """Names of all stored mask files of image ``rel``."""
        base = rel.rsplit("/", 1)[-1]
        folder = self.mask_path(rel, "x").parent
        try:
            return sorted(n for n in os.listdir(folder) if _is_mask_name(n, base))
        except FileNotFoundError:
            return []

    def delete_masks_except(self, rel: str, keep: str | None) -> None:
        for name in self.mask_files(rel):
            if name != keep:
                try:
                    self.mask_path(rel, name).unlink()
                except OSError:
                    pass  # a stray mask costs disk space only; the next save retries


_MASK_SUFFIX = re.compile(rf"\.[0-9a-f]{{{MASK_HASH_LEN}}}\.png")


def _is_mask_name(name: str, base: str) -> bool:
    """``name`` is ``<base>.<16 hex digits>.png`` (one compiled pattern, not one per image)."""
    return name.startswith(base) and _MASK_SUFFIX.fullmatch(name, len(base)) is not None


def mask_hash(mask: np.ndarray) -> str:
    """Hex digest (16 chars) of a (H, W) bool mask's shape and pixels."""
    h = hashlib.sha256(f"{mask.shape}".encode())
    h.update(np.packbits(np.ascontiguousarray(mask, dtype=bool)).tobytes())
    return h.hexdigest()[:MASK_HASH_LEN]


def file_sha256(path: Path) -> str:
    """SHA-256 hex (64 chars) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
