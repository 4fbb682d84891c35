"""The sidecar folder's files, the crash-safe write order and the locks that make several
writers safe (used by :mod:`.project`).

Layout of ``FOLDER/.zsas/``::

    project.json                         {"schema_version": 1, "created": ..., "exclude": [...]}
    records/<rel>.json                   one AnnotationRecord per image (no pixels)
    masks/<rel>.<maskhash16>.png         its mask, 0/255 single-channel PNG
    locks/NN.lock                        empty files, one per lock stripe (see below)

A file name longer than :data:`MAX_PLAIN_NAME_BYTES` (UTF-8 bytes) is stored under a short
hashed name, ``<first bytes>~<sha256 16 hex>``: the sidecar names add up to 21 bytes and must
stay under the file system's 255-byte limit. Such a record's image is read from its JSON.

Save order for one record: (1) the mask PNG under a content-addressed name (a new file; the
old mask is untouched), (2) the record JSON, atomically replacing the old one, (3) delete the
masks of that image the JSON no longer names. A crash after (1) leaves the old JSON naming the
old mask: the last good record stays whole; the stray new mask is deleted by the next save.

Several writers (processes or threads: the app, ``zsas label``, ``zsas label --ray`` workers):
every save of a record runs, start to end (reading the stored revision, steps 1-3), holding
that record's exclusive lock, :meth:`Store.record_lock`; a reader (:meth:`Project.load`) holds
it shared while it reads the JSON and then the mask. So two saves of one image never
interleave, and the masks step (3) deletes are never another writer's (that writer would have
to hold the lock). A lock is an ``flock`` on one of :data:`LOCK_STRIPES` files chosen by a hash
of the image path (a few files for any number of images; two images that share a stripe just
wait for each other); the kernel releases it when its holder dies, even by ``kill -9``.
:meth:`Project.save` with ``expect_revision`` is a compare-and-swap on the record's
``revision`` under that lock: the way for a batch writer to never overwrite a review.

Every write and delete goes to a path that resolves inside the real ``.zsas`` folder
(:meth:`Store.inside`): a symbolic link in the sidecar that leads out is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
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
#: Longest image file name (UTF-8 bytes) stored under its own name; longer ones are hashed.
MAX_PLAIN_NAME_BYTES = 200
#: Number of lock files; a record's lock is ``locks/<hash of rel mod LOCK_STRIPES>.lock``.
LOCK_STRIPES = 64
_HASHED_NAME = re.compile(r"~[0-9a-f]{16}$")


class SidecarEscapeError(OutputError):
    """A path in ``.zsas`` resolves outside it (a symbolic link): nothing is written there."""


class Store:
    """Paths and low-level reads/writes inside ``root/.zsas``."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / STORE_DIR
        self.records = self.dir / "records"
        self.masks = self.dir / "masks"
        self.locks = self.dir / "locks"
        self.project_file = self.dir / "project.json"

    # -- containment and locks -------------------------------------------------------------------
    def inside(self, path: Path) -> Path:
        """``path`` if it (following every link, its own included) resolves inside the real
        ``.zsas`` folder; else :class:`SidecarEscapeError` naming the link to remove."""
        real_dir = self.dir.resolve()
        target = path.resolve()
        if target != real_dir and real_dir not in target.parents:
            raise SidecarEscapeError(
                f"refusing to write or delete {path}: it leads outside the project's annotation "
                f"folder {real_dir} (to {target}), through a symbolic link; replace the link with a "
                f"real folder")
        return path

    @contextmanager
    def record_lock(self, rel: str, shared: bool = False) -> Iterator[None]:
        """Hold the lock of record ``rel`` (exclusive for writers, ``shared`` for readers) until
        the block ends; blocks while another holder has it. See the module docstring.

        A reader in a project it cannot write (read-only disk) reads without a lock; a writer
        that cannot create the lock file gets an :class:`OutputError`."""
        digest = hashlib.sha256(rel.encode("utf-8", "surrogateescape")).digest()
        path = self.locks / f"{int.from_bytes(digest[:4], 'big') % LOCK_STRIPES:02d}.lock"
        try:
            self.inside(path)
            self.locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            if shared:
                yield
                return
            raise OutputError(f"cannot create the lock file {path}: {exc.strerror or exc}") from exc
        try:
            _lock_fd(fd, shared)
            yield
        finally:
            os.close(fd)            # releases the lock

    # -- project.json --------------------------------------------------------------------------
    def read_or_create_project_file(self, create: bool) -> dict[str, Any]:
        """The project settings; created with defaults when absent. Raises RecordError when
        the file is corrupt or written by a newer version (never overwritten)."""
        if not self.project_file.exists():
            data = {"schema_version": SCHEMA_VERSION, "created": now_iso(), "exclude": list(DEFAULT_EXCLUDE)}
            if create:
                atomic_write_json(self.inside(self.project_file), data)
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
        return self._sidecar_path(self.records, rel, f"{stored_name(rel)}.json")

    def record_files(self) -> list[tuple[str, Path]]:
        """(rel, path) of every record JSON on disk (temp and moved-aside files skipped). A
        record under a hashed name gets the image named in its JSON when that image's record
        path is this file (else the hashed name, which no image has: an orphan)."""
        out = []
        if not self.records.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(self.records):
            for name in files:
                if name.endswith(".json") and not name.startswith("."):
                    path = Path(dirpath) / name
                    rel = path.relative_to(self.records).as_posix()[:-len(".json")]
                    if _HASHED_NAME.search(rel):
                        rel = self._hashed_record_rel(rel, path)
                    out.append((rel, path))
        return sorted(out)

    def _hashed_record_rel(self, rel: str, path: Path) -> str:
        try:
            image = json.loads(path.read_text(encoding="utf-8")).get("image")
        except (OSError, ValueError, RecursionError, AttributeError):
            return rel
        return image if isinstance(image, str) and self.record_path(image) == path else rel

    def read_record_json(self, rel: str) -> Any:
        """The parsed JSON of a record; RecordError when unreadable or not JSON."""
        path = self.record_path(rel)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:   # ValueError: JSON, UTF-8, huge ints
            raise RecordError(f"{path}: unreadable record ({exc})") from exc

    def write_record_json(self, rel: str, data: dict[str, Any]) -> None:
        atomic.atomic_write_json(self.inside(self.record_path(rel)), data)

    def move_aside(self, rel: str) -> Path:
        """Rename a record file to ``<name>.corrupt-<UTC timestamp>``; returns the new path."""
        src = self.inside(self.record_path(rel))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        dst = src.with_name(f"{src.name}.corrupt-{stamp}")
        try:
            os.replace(src, dst)
        except OSError as exc:
            raise OutputError(f"cannot move the corrupt record {src} aside: {exc.strerror or exc}") from exc
        return dst

    def delete_record(self, rel: str) -> None:
        try:
            self.inside(self.record_path(rel)).unlink()
        except FileNotFoundError:
            pass

    # -- masks -----------------------------------------------------------------------------------
    def mask_path(self, rel: str, mask_file: str) -> Path:
        return self._sidecar_path(self.masks, rel, mask_file)

    @staticmethod
    def _sidecar_path(top: Path, rel: str, name: str) -> Path:
        """``top/<rel's folders>/name``."""
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        return (top / parent / name) if parent else (top / name)

    def write_mask(self, rel: str, mask: np.ndarray) -> str:
        """Write ``mask`` ((H, W) bool) under its content-addressed name; returns the file name."""
        mask = np.asarray(mask).astype(bool)
        name = f"{stored_name(rel)}.{mask_hash(mask)}.png"
        path = self.inside(self.mask_path(rel, name))
        if not path.exists():
            atomic.atomic_write_bytes(path, encode_png(mask))
        return name

    def read_mask(self, rel: str, mask_file: str) -> np.ndarray:
        """(H, W) bool; ImageReadError when missing or unreadable."""
        return load_mask(self.mask_path(rel, mask_file))

    def mask_files(self, rel: str) -> list[str]:
        """Names of all stored mask files of image ``rel``."""
        base = stored_name(rel)
        folder = self.mask_path(rel, "x").parent
        try:
            return sorted(n for n in os.listdir(folder) if _is_mask_name(n, base))
        except FileNotFoundError:
            return []

    def delete_masks_except(self, rel: str, keep: str | None) -> None:
        """Delete the masks of ``rel`` other than ``keep``; call it holding the record's lock."""
        for name in self.mask_files(rel):
            if name != keep:
                try:
                    self.inside(self.mask_path(rel, name)).unlink()
                except OSError:
                    pass  # a stray mask costs disk space only; the next save retries


def stored_name(rel: str) -> str:
    """The name the sidecar files of image ``rel`` start with: its file name, or for a name over
    :data:`MAX_PLAIN_NAME_BYTES` UTF-8 bytes, its first 48 bytes (whole characters) + ``~`` + 16
    hex digits of the SHA-256 of the full path."""
    base = rel.rsplit("/", 1)[-1]
    raw = base.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_PLAIN_NAME_BYTES and not _HASHED_NAME.search(base):
        return base
    prefix = raw[:48].decode("utf-8", "ignore")
    return f"{prefix}~{hashlib.sha256(rel.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"


def printable(path: str | os.PathLike) -> str:
    """``path`` as text that prints anywhere: bytes that are not UTF-8 become ``\\xe9``."""
    return os.fspath(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _lock_fd(fd: int, shared: bool) -> None:
    """Block until ``fd``'s file is locked (flock on POSIX; msvcrt byte lock, always exclusive,
    on Windows)."""
    try:
        import fcntl
    except ImportError:                      # Windows
        import msvcrt
        import time
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                time.sleep(0.05)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            return
        except InterruptedError:
            continue


class RecordConflictError(RecordError):
    """A compare-and-swap save found another revision stored: nothing was written."""


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
