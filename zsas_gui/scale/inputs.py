"""The image list of a distributed job and reading one image from wherever it lives.

A source is a local path or a URI (``s3://bucket/prefix``, ``gs://...``, ``file:///...``) that
pyarrow's file systems understand. An image is identified by ``src`` (the string written into its
record) and ``rel`` (its output name: the path relative to the source argument, extension
dropped). Local folders and files give exactly the (src, rel) of the local command
(:func:`~zsas_gui.core.engine.segment_job.collect_inputs`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

from ..core.engine.segment_job import check_inputs, collect_inputs
from ..core.errors import ImageReadError, ZsasError
from ..core.io.imageio import IMAGE_EXTENSIONS, load_image

#: A file with one image path or URI per line (blank lines and ``#`` comments skipped).
LIST_FILE_EXTENSIONS = (".txt", ".lst")


def is_uri(src: str) -> bool:
    return "://" in src


def _is_list_file(raw: str) -> bool:
    return not is_uri(raw) and raw.lower().endswith(LIST_FILE_EXTENSIONS) and Path(raw).is_file()


def list_inputs(paths: list[str]) -> list[tuple[str, str]]:
    """(src, rel) of every image under ``paths`` (folders, image files, list files, URI
    prefixes), in a stable order. With several paths, a folder's, list file's or prefix's
    images are named ``<its name>/<rel>`` (as the local command does for folders)."""
    paths = [str(p) for p in paths]
    if not any(is_uri(p) or _is_list_file(p) for p in paths):
        return [(str(src), rel) for src, rel in collect_inputs(paths)]
    items: list[tuple[str, str]] = []
    for raw in paths:
        if is_uri(raw):
            found, prefix = _list_uri(raw), PurePosixPath(raw.split("://", 1)[1].rstrip("/")).name
        elif _is_list_file(raw):
            found, prefix = _read_list_file(Path(raw)), Path(raw).stem
        else:
            found = [(str(src), rel) for src, rel in collect_inputs([raw])]
            prefix = Path(raw).name if Path(raw).is_dir() else ""
        items += [(src, f"{prefix}/{rel}" if len(paths) > 1 and prefix else rel) for src, rel in found]
    return check_inputs(items, paths)


def _filesystem(uri: str):
    """(pyarrow FileSystem, path inside it) for ``uri``; ZsasError when pyarrow cannot open it."""
    try:
        from pyarrow import fs
    except ImportError as exc:
        raise ZsasError(f"{uri}: reading URIs needs pyarrow: pip install \"zsas-gui[ray]\"") from exc
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as exc:   # pyarrow raises ArrowInvalid/OSError/... for unknown schemes, credentials
        raise ZsasError(f"{uri}: cannot open this location ({exc})") from exc


def _list_uri(uri: str) -> list[tuple[str, str]]:
    """(uri of each image, rel) under a URI prefix (recursive, sorted)."""
    from pyarrow import fs

    filesystem, root = _filesystem(uri)
    info = filesystem.get_file_info(root)
    if info.type == fs.FileType.NotFound:
        raise ZsasError(f"{uri}: no such file or prefix")
    if info.type == fs.FileType.File:
        return [(uri, PurePosixPath(root).stem)]
    scheme = uri.split("://", 1)[0]
    base = uri.rstrip("/")
    found = []
    for entry in filesystem.get_file_info(fs.FileSelector(root, recursive=True)):
        rel = PurePosixPath(entry.path).relative_to(root.rstrip("/") or "/")
        if entry.type != fs.FileType.File or any(p.startswith(".") for p in rel.parts):
            continue
        if rel.suffix.lower() in IMAGE_EXTENSIONS:
            found.append((f"{base}/{rel.as_posix()}" if scheme != "file" else f"file://{entry.path}",
                          rel.with_suffix("").as_posix()))
    return sorted(found)


def _read_list_file(path: Path) -> list[tuple[str, str]]:
    """(src, rel) of each line of a list file; relative lines are relative to the file's folder,
    rel is relative to the deepest folder holding every listed image."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ZsasError(f"{path}: cannot read the list file ({exc})") from exc
    srcs = []
    for line in (s.strip() for s in lines):
        if line and not line.startswith("#"):
            srcs.append(line if is_uri(line) or os.path.isabs(line) else str(path.parent / line))
    if not srcs:
        raise ZsasError(f"{path}: the list file names no image")
    keys = [PurePosixPath(s.split("://", 1)[1] if is_uri(s) else Path(s).resolve().as_posix()) for s in srcs]
    common = PurePosixPath(os.path.commonpath([k.parent.as_posix() for k in keys]))
    return [(s, k.relative_to(common).with_suffix("").as_posix()) for s, k in zip(srcs, keys)]


def read_image(src: str):
    """(H, W, 3) uint8 RGB of a local path or a URI; ImageReadError naming ``src``."""
    if not is_uri(src):
        return load_image(src)
    filesystem, inner = _filesystem(src)
    try:
        with filesystem.open_input_file(inner) as fh:
            data = fh.readall()
    except FileNotFoundError as exc:
        raise ImageReadError(f"{src}: file not found") from exc
    except Exception as exc:     # network, permissions: pyarrow's OSError subclasses and others
        raise ImageReadError(f"{src}: cannot read ({exc})") from exc
    with tempfile.TemporaryDirectory(prefix="zsas-ray-") as tmp:
        local = Path(tmp) / PurePosixPath(inner).name
        local.write_bytes(data)
        try:
            return load_image(local)
        except ImageReadError as exc:
            raise ImageReadError(str(exc).replace(str(local), src)) from exc
