"""Helpers for the reliability tests (import as ``reliability_helpers``): odd files, simulated
disk faults.

Tests run as root in CI, where ``chmod`` does not stop reads or writes: permission and
read-only faults are simulated by making the OS call fail with the errno it would give.
"""

from __future__ import annotations

import errno
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from synthetic import blob_image

#: errno -> the message the OS gives (what a user sees in our error text).
FAULTS = {"ENOSPC": errno.ENOSPC, "EROFS": errno.EROFS, "EACCES": errno.EACCES, "EIO": errno.EIO}


def os_error(name: str, path: str | os.PathLike | None = None) -> OSError:
    code = FAULTS[name]
    cls = PermissionError if code == errno.EACCES else OSError
    return cls(code, os.strerror(code), None if path is None else str(path))


def png_header_only(w: int, h: int) -> bytes:
    """A PNG signature + IHDR claiming (w, h) grey pixels, then IEND: no pixel data at all."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IEND", b""))


def encoded(fmt: str, hw=(40, 48), **save_kw) -> bytes:
    """Bytes of a small valid image in ``fmt`` (PNG, JPEG, TIFF, GIF, BMP, WEBP)."""
    buf = io.BytesIO()
    img = Image.fromarray(blob_image(hw, [(20, 20)], radius=6))
    if fmt == "GIF":
        img = img.convert("P")
    img.save(buf, format=fmt, **save_kw)
    return buf.getvalue()


def mask_png(hw=(40, 48)) -> bytes:
    m = np.zeros(hw, np.uint8)
    m[5:20, 10:30] = 255
    buf = io.BytesIO()
    Image.fromarray(m).save(buf, format="PNG")
    return buf.getvalue()


class WriteFaults:
    """Make the n-th and later file writes of :func:`zsas_gui.core.io.atomic.atomic_write_bytes`
    fail the way a full or read-only disk does, at a chosen step:

    - ``"write"``: half the bytes reach the temp file, then ``write`` fails (ENOSPC);
    - ``"fsync"``: the data is written, ``fsync`` fails (ENOSPC/EIO: delayed allocation);
    - ``"replace"``: the temp file is complete, the rename fails;
    - ``"create"``: the temp file cannot be created (EROFS/EACCES: read-only output).

    Only writes whose target path contains ``match`` count. ``calls`` lists the targets seen."""

    def __init__(self, monkeypatch):
        from zsas_gui.core.io import atomic

        self.atomic = atomic
        self.mp = monkeypatch
        self.calls: list[str] = []
        self.failed: list[str] = []

    def arm(self, step: str, err: str = "ENOSPC", after: int = 0, match: str = "") -> None:
        atomic, mp = self.atomic, self.mp
        real_fdopen, real_fsync, real_replace = os.fdopen, os.fsync, os.replace
        real_mkstemp = atomic.tempfile.mkstemp
        state = {"target": None}

        def counting(target: str) -> bool:
            if match not in target:
                return False
            self.calls.append(target)
            if len(self.calls) > after:
                self.failed.append(target)
                return True
            return False

        def mkstemp(*args, prefix="", suffix="", dir=None, **kw):
            target = os.path.join(str(dir), prefix[1:].rsplit(".", 1)[0]) if prefix else str(dir)
            state["target"] = target
            fail = counting(target)
            if fail and step == "create":
                raise os_error(err, dir)
            state["fail"] = fail
            return real_mkstemp(*args, prefix=prefix, suffix=suffix, dir=dir, **kw)

        class HalfFile(io.FileIO):
            def write(self, data):
                if state.get("fail") and step == "write":
                    super().write(bytes(data)[: len(data) // 2])
                    raise os_error(err)
                return super().write(data)

        def fdopen(fd, mode="r", *args, **kw):
            if state.get("fail") and step == "write" and "b" in mode:
                return HalfFile(fd, "wb", closefd=True)
            return real_fdopen(fd, mode, *args, **kw)

        def fsync(fd):
            if state.get("fail") and step == "fsync":
                raise os_error(err)
            return real_fsync(fd)

        def replace(src, dst, *args, **kw):
            if state.get("fail") and step == "replace" and str(src).endswith(".tmp"):
                raise os_error(err, dst)
            return real_replace(src, dst, *args, **kw)

        mp.setattr(atomic.tempfile, "mkstemp", mkstemp)
        mp.setattr(atomic.os, "fdopen", fdopen)
        mp.setattr(atomic.os, "fsync", fsync)
        mp.setattr(atomic.os, "replace", replace)

    def disarm(self) -> None:
        self.mp.undo()


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) -> its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def temp_leftovers(root: Path) -> list[str]:
    """Temp files of atomic writes (``.<name>.<random>.tmp``) left anywhere under ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*.tmp"))


class _Watch:
    """What the process opened and where it tried to connect while a :func:`watching` block ran."""

    def __init__(self, refuse_network: bool):
        self.refuse_network = refuse_network
        self.opens: list[tuple[str, str | None, int | None]] = []   # (path, mode, flags)
        self.connects: list[object] = []

    def written_paths(self) -> list[str]:
        """Paths opened for writing (builtin open with w/a/x/+ modes, os.open with write flags)."""
        out = []
        for path, mode, flags in self.opens:
            if mode is not None:
                writes = any(c in mode for c in "wax+")
            else:
                writes = bool((flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))
            if writes:
                out.append(path)
        return out


_WATCH: list[_Watch] = []


def _audit(event: str, args: tuple) -> None:
    if not _WATCH:
        return
    w = _WATCH[-1]
    if event == "open":
        path, mode, flags = args
        if isinstance(path, (str, bytes, os.PathLike)):
            w.opens.append((os.fsdecode(path), mode, flags))
    elif event in ("socket.connect", "socket.getaddrinfo", "urllib.Request", "http.client.connect"):
        w.connects.append((event, args))
        if w.refuse_network:
            raise ConnectionRefusedError(f"test forbids network access ({event} {args!r})"[:300])


_HOOKED = []


class watching:
    """Context manager recording every ``open`` (path, mode) and refusing every network access
    (audit events ``socket.connect``, ``socket.getaddrinfo``, ``urllib.Request``) of this process,
    whatever module makes it. Audit hooks cannot be removed: one hook is installed once and
    is inert outside these blocks."""

    def __init__(self, refuse_network: bool = True):
        self.watch = _Watch(refuse_network)

    def __enter__(self) -> _Watch:
        import sys

        if not _HOOKED:
            sys.addaudithook(_audit)
            _HOOKED.append(True)
        _WATCH.append(self.watch)
        return self.watch

    def __exit__(self, *exc) -> None:
        _WATCH.remove(self.watch)
