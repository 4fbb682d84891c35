"""Atomic file writing: write a temp file in the same folder, fsync, then ``os.replace``.

A failed or interrupted write leaves the previous file intact (never a half-written file).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import OutputError

# read once at import: os.umask can only be read by setting it, which is not thread-safe
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create parent folders. Returns the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    return path


def check_output_folder(folder: str | os.PathLike, option: str = "-o") -> Path:
    """Fail early, before any model loads, when ``folder`` cannot take output: it exists and is
    not a folder, or a probe file cannot be written there (the one write probe). ``option``
    names the command-line option to change in the message. Returns the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder; choose another {option}")
    probe = folder / ".zsas-write-test"
    try:
        atomic_write_bytes(probe, b"ok")
        probe.unlink()
    except (OutputError, OSError) as exc:
        raise OutputError(f"cannot write to output folder {folder}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from exc
    return folder


#: what :func:`atomic_write_bytes` names its temp files: ``.NAME.`` + mkstemp's 8 characters + ``.tmp``
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
#: temp files younger than this may belong to a write in progress (another process): kept
STALE_TEMP_S = 3600.0


def sweep_temp_files(folder: str | os.PathLike, older_than_s: float = STALE_TEMP_S) -> list[Path]:
    """Delete the temp files that writes killed between creating and renaming them left under
    ``folder`` (hidden ``.NAME.xxxxxxxx.tmp``, never read as data), when last modified more than
    ``older_than_s`` seconds ago. Returns the paths deleted; a file that cannot be deleted is
    left (it is harmless)."""
    deleted = []
    cutoff = time.time() - older_than_s
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            if not _TEMP_NAME.match(name):
                continue
            path = Path(dirpath) / name
            try:
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
                    deleted.append(path)
            except OSError:
                pass
    return deleted


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable across a power cut (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename itself is done
    finally:
        os.close(fd)


def _new_file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give: the old file's mode when replacing one,
    else 0o666 minus the umask (mkstemp's private 0o600 would hide exports from other users)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as pretty JSON atomically (NaN is refused: it is not valid JSON). Strings
    holding bytes that are not UTF-8 (a file name Python read as ``"lat\\udce9.png"``) are
    written as ``\\u`` escapes, so the file stays valid UTF-8 JSON."""
    try:
        data = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        data = json.dumps(obj, indent=2, ensure_ascii=True, allow_nan=False).encode("ascii")
    return atomic_write_bytes(path, data + b"\n")
