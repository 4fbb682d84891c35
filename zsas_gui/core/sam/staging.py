"""Work folders that show whether a live process still owns them, so a killed one's are removed.

    with owned_folder(parent, ".onnx-export-") as staging:   # staging.path, staging.fd
        ...                                                   # removed on leaving
    remove_stale(parent, ".onnx-export-")                     # folders no live process owns
    with exclusive(parent / ".KEY.lock", cancelled):          # one holder across processes

A process killed with SIGKILL (``ray.kill`` of an actor, the OOM killer, ``kill -9`` of the app)
runs no cleanup: the ONNX export's staging folders beside the cache (``.onnx-export-*``) and its
job folders in the temp folder (``zsas-onnx-export-*``, the pickled modules) stayed forever. Each
such folder now holds :data:`OWNER_FILE`, locked (``flock``, shared) by the process that made it
for as long as it uses the folder, and by the export child that inherits the descriptor; the
kernel drops a lock when the last process holding it exits, however it exits.
:func:`remove_stale` removes a folder only when it can take that lock exclusively (no live owner),
holding it while it deletes. A folder without the file (made by an older version, or in the
microseconds between ``mkdtemp`` and the lock) is removed only when older than
:data:`UNLOCKED_STALE_S`. Where ``fcntl`` does not exist (Windows) no folder is locked and the age
rule alone applies.

:func:`exclusive` lets one process at a time do a piece of work (one export per cache key: Ray
actors and CLI runs that start together wait for the first and read its graphs). It polls, so a
waiter can give up when ``cancelled()`` says so, and it removes its lock file when done (a waiter
that locked a file removed meanwhile tries again on the new one).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

OWNER_FILE = "owner.lock"
#: a folder without an owner lock is someone's only when younger than this (seconds)
UNLOCKED_STALE_S = 3600.0

try:
    import fcntl
except ImportError:          # Windows
    fcntl = None


@dataclass(frozen=True)
class OwnedFolder:
    """A folder made by :func:`owned_folder`; ``fd`` (or -1) holds its owner lock."""
    path: Path
    fd: int


@contextmanager
def owned_folder(parent: str | Path, prefix: str) -> Iterator[OwnedFolder]:
    """A new folder ``parent/<prefix>XXXX`` owned by this process until the block ends, then
    removed. Raises OSError when ``parent`` cannot hold it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = -1
    try:
        if fcntl is not None:
            fd = _owner_lock(path / OWNER_FILE)
        yield OwnedFolder(path, fd)
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if fd >= 0:
            os.close(fd)


def _owner_lock(owner: Path) -> int:
    """``owner`` created and locked (shared) by this process; -1 (no file: the age rule
    applies) on a file system without flock (some network ones)."""
    fd = os.open(owner, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError as exc:
        log.info("no owner lock in %s (%s)", owner.parent, exc)
        os.close(fd)
        owner.unlink(missing_ok=True)
        return -1
    os.write(fd, f"pid {os.getpid()}\n".encode())      # for people; the lock decides
    return fd


def remove_stale(parent: str | Path, prefix: str) -> int:
    """Remove the folders ``parent/<prefix>*`` that no live process owns; returns how many."""
    try:
        candidates = [p for p in Path(parent).iterdir() if p.name.startswith(prefix)]
    except OSError:
        return 0
    removed = 0
    for folder in candidates:
        try:
            if folder.is_dir() and not folder.is_symlink() and _remove_if_unowned(folder):
                removed += 1
        except OSError as exc:       # gone meanwhile, not ours to remove: leave it
            log.debug("left %s: %s", folder, exc)
    if removed:
        log.info("removed %d work folder(s) left by killed ONNX exports in %s", removed, parent)
    return removed


def _remove_if_unowned(folder: Path) -> bool:
    owner = folder / OWNER_FILE
    if fcntl is None or not owner.exists():
        if time.time() - folder.stat().st_mtime < UNLOCKED_STALE_S:
            return False
        shutil.rmtree(folder)
        return True
    fd = os.open(owner, os.O_RDWR)           # no O_CREAT: a vanished file means its owner is removing it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False                     # a live process owns it
        shutil.rmtree(folder)
        return True
    finally:
        os.close(fd)


class Cancelled(RuntimeError):
    """:func:`exclusive` stopped waiting because ``cancelled()`` said so."""


#: how often a waiter of :func:`exclusive` tries the lock again (seconds)
POLL_S = 0.1


@contextmanager
def exclusive(lock: Path, cancelled: Callable[[], bool] = lambda: False) -> Iterator[bool]:
    """Hold ``lock`` exclusively across processes while the block runs (waits for the holder;
    raises :class:`Cancelled` when ``cancelled()`` turns true while waiting). Yields False, holding
    nothing, where no lock can be made (no ``fcntl``, a folder that cannot be written): the work
    then runs unguarded, which callers must tolerate."""
    fd = _lock_fd(lock, cancelled) if fcntl is not None else -1
    try:
        yield fd >= 0
    finally:
        if fd >= 0:
            lock.unlink(missing_ok=True)       # still ours: the inode was checked when locked
            os.close(fd)


def _lock_fd(lock: Path, cancelled: Callable[[], bool]) -> int:
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            log.info("no lock %s (%s): working unguarded", lock, exc)
            return -1
        try:
            waiting = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waiting:
                        log.info("waiting for another process holding %s", lock)
                        waiting = True
                    if cancelled():
                        raise Cancelled(f"stopped waiting for {lock}") from None
                    time.sleep(POLL_S)
                except OSError as exc:          # a file system without flock (some network ones)
                    log.info("no lock %s (%s): working unguarded", lock, exc)
                    os.close(fd)
                    lock.unlink(missing_ok=True)   # nobody can lock it there
                    return -1
            try:
                if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                    return fd                  # the file at the path: the lock counts
            except FileNotFoundError:
                pass                           # its holder removed it when done: lock the new one
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
