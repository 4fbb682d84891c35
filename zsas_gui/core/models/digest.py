"""Content digests of checkpoint files, for cache keys and provenance (issue 13: a second
checkpoint of the same architecture must never be served the first one's cached outputs).

SHA-256 of the file's bytes, computed once and remembered per (resolved path, size, mtime):
in memory for the process, and for large files (>= :data:`REMEMBER_ON_DISK_BYTES`, where
hashing takes a second or more) in ``models_dir()/digests.json`` so the next run skips it.
A file that changes gets a new size or mtime, hence a new digest.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: Files at least this large have their digest remembered on disk (hashing ~1 s per GB).
REMEMBER_ON_DISK_BYTES = 64 << 20
MEMO_FILE = "digests.json"

_memo: dict[str, str] = {}
_lock = threading.Lock()


def _memo_key(path: Path) -> tuple[str, int]:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}", st.st_size


def _disk_memo_path() -> Path:
    from .registry import models_dir

    return models_dir() / MEMO_FILE


def _read_disk_memo() -> dict[str, str]:
    try:
        data = json.loads(_disk_memo_path().read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(data, dict) else {}


def _write_disk_memo(key: str, digest: str) -> None:
    from ..errors import OutputError
    from ..io.atomic import atomic_write_json

    memo = _read_disk_memo()
    memo[key] = digest
    try:
        atomic_write_json(_disk_memo_path(), memo)
    except (OutputError, OSError) as exc:   # remembering only saves time
        log.info("checkpoint digest not remembered on disk: %s", exc)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a checkpoint file (remembered per path + size + mtime)."""
    from .download import file_digest

    path = Path(path)
    key, size = _memo_key(path)
    with _lock:
        if key in _memo:
            return _memo[key]
    big = size >= REMEMBER_ON_DISK_BYTES
    digest = _read_disk_memo().get(key) if big else None
    if digest is None:
        digest = file_digest(path, "sha256")
        if big:
            _write_disk_memo(key, digest)
    with _lock:
        _memo[key] = digest
    return digest
