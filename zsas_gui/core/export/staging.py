"""Whole-folder atomicity for exports: build in a sibling, then swap.

The export is written into ``OUT.tmp-<pid>`` next to ``OUT``. Only when every file is written:
an absent or empty ``OUT`` is replaced by one rename; an existing export (a folder holding
``zsas_export.json``) is replaced, with ``overwrite``, by renaming it to ``OUT.old-<pid>``,
renaming the new folder to ``OUT`` and deleting the old one. Any other non-empty ``OUT`` is
refused. A failure while writing removes the temp folder and leaves ``OUT`` untouched; a crash
between the two renames leaves the previous export whole under ``OUT.old-<pid>``; the next
export to ``OUT`` puts it back (when ``OUT`` is missing) or deletes it, and deletes the
``OUT.tmp-<pid>`` folders of killed exports (the process ``<pid>`` no longer runs). An existing
empty ``OUT`` (the shell's current folder: ``-o .``) is kept and the export moved into it,
its manifest last.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError

MANIFEST = "zsas_export.json"


def check_target(out: Path, overwrite: bool, protect: Path | None = None) -> None:
    """Refuse, before any work, an output that cannot or must not be replaced.

    ``protect``: a folder that must neither contain ``out`` nor lie inside it (the project:
    an export inside it would be scanned as project images; replacing a parent would delete it).
    """
    out_r = out.resolve()
    if protect is not None:
        prot = protect.resolve()
        if out_r == prot or prot in out_r.parents or out_r in prot.parents:
            raise OutputError(f"{out}: the export folder must be outside the project folder {protect} "
                              f"(and not contain it)")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise OutputError(f"{out}: folder is not empty and is not a zsas export; choose a new or "
                              f"empty folder")
        if not overwrite:
            raise OutputError(f"{out}: holds a previous export; pass --overwrite to replace it")


@contextmanager
def staged(out: Path, overwrite: bool, protect: Path | None = None) -> Iterator[Path]:
    """Yield a temp folder to write the export into; on success swap it into ``out``."""
    out = Path(os.path.abspath(out))          # "." has no name to put a sibling beside
    check_target(out, overwrite, protect)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sweep_leftovers(out)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as exc:        # read-only or full disk, no permission: a user error, no traceback
        raise OutputError(f"cannot create the export folder {tmp}: {exc.strerror or exc}") from exc
    try:
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):   # e.g. a source image vanished or became unreadable meanwhile
            raise OutputError(f"export to {out} stopped, nothing there was changed: "
                              f"{exc.strerror or exc}: {exc.filename}") from exc
        raise
    try:
        _swap(tmp, out, overwrite)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot move the finished export into {out}: {exc.strerror or exc}") from exc


def _swap(tmp: Path, out: Path, overwrite: bool) -> None:
    check_target(out, overwrite)          # again: something may have appeared meanwhile
    if out.is_dir() and not any(out.iterdir()):
        for name in sorted(os.listdir(tmp), key=lambda n: n == MANIFEST):
            os.replace(tmp / name, out / name)
        tmp.rmdir()
        return
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f"{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def sweep_leftovers(out: Path) -> list[Path]:
    """Clean what killed exports to ``out`` left beside it: an ``OUT.old-<pid>`` (the previous
    export, whole) goes back to ``OUT`` when that is missing, else is deleted; ``OUT.tmp-<pid>``
    (a partial export) is deleted. Only folders of processes that no longer run. Returns the
    folders deleted or restored."""
    pattern = re.compile(rf"{re.escape(out.name)}\.(tmp|old)-(\d+)")
    done = []
    try:
        siblings = sorted(out.parent.iterdir())
    except OSError:
        return done
    for path in siblings:
        m = pattern.fullmatch(path.name)
        if not m or not path.is_dir() or path.is_symlink() or _running(int(m.group(2))):
            continue
        if m.group(1) == "old" and not out.exists():
            os.replace(path, out)
        else:
            shutil.rmtree(path, ignore_errors=True)
        done.append(path)
    return done


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (this one counts; elsewhere than POSIX: assume it does)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
