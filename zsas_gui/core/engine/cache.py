"""Caches between the expensive per-image step and the cheap per-edit step.

- :class:`ByteLRU`: in-memory LRU bounded by bytes (values report their size).
- :class:`DiskCache`: ``.npz`` files of plain arrays (no pickle) keyed by image content hash,
  model id (checkpoint content digest + precision) and preprocessing (:func:`sam_cache_id`;
  CLIP: the mapper's ``tokens_key``); size-bounded (oldest-used files go first); a file that cannot be
  read is deleted and recomputed, never trusted. Safe to delete at any time.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from ..io.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


class ByteLRU:
    """Least-recently-used mapping holding at most ``max_bytes`` (by ``size_of(value)``).

    A value larger than the whole budget is not kept. Thread-safe.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[Any], int]):
        self.max_bytes = int(max_bytes)
        self._size_of = size_of
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key, value) -> None:
        size = int(self._size_of(value))
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, s) = self._items.popitem(last=False)
                self._bytes -= s

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def sam_cache_id(sam) -> str:
    """Cache id of SAM image embeddings: the bundle's ``model_id`` (checkpoint content digest and
    precision, :mod:`..models.loading`) plus SAM's preprocessing (input side, pixel mean/std;
    SAM 2.1 resizes to its square ``image_size`` with the package's fixed ImageNet statistics)."""
    model = sam.model
    if not hasattr(model, "pixel_mean"):      # SAM 2.1 (SAM2Base): no per-model statistics
        return f"{sam.model_id}|{sam.family}-resize-square-{getattr(model, 'image_size', sam.long_side)}"
    mean = [round(float(v), 4) for v in model.pixel_mean.flatten()]
    std = [round(float(v), 4) for v in model.pixel_std.flatten()]
    return f"{sam.model_id}|resize-long-{sam.long_side}-pad|mean{mean}|std{std}"


class DiskCache:
    """Arrays on disk under ``folder``; at most ``max_bytes`` in all (LRU by file mtime)."""

    def __init__(self, folder: str | os.PathLike, max_bytes: int = 2 << 30):
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.hits = self.misses = self.corrupt = 0

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        path = self._path(key)
        if not path.exists():
            self.misses += 1
            return None
        try:
            # from bytes: no file handle is left open when numpy refuses a file
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            os.utime(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is dropped and recomputed
            log.warning("cache file %s unreadable (%s); recomputing", path, exc)
            self.corrupt += 1
            self.misses += 1
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return arrays

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        try:
            atomic_write_bytes(self._path(key), buf.getvalue())
        except OutputError as exc:  # a cache that cannot be written only costs speed
            log.warning("disk cache not written: %s", exc)
            return
        self._evict()

    def _evict(self) -> None:
        files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.folder.glob("*/*.npz")]
        total = sum(s for _, s, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*/*.npz"))
