"""Resumable, verified checkpoint downloads with the standard library only (urllib).

``download(spec)`` fetches ``spec.url`` (HTTPS only, redirects included) into ``<file>.part`` next
to the target, resumes an existing ``.part`` with an HTTP ``Range`` request (and starts over when
the server ignores it), checks size and checksum, then ``os.replace``-s the file into place. A
failed checksum deletes the ``.part``; a cancel or a network failure keeps it for the next call.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ... import __version__
from ..errors import DownloadError
from .registry import ModelSpec, format_size, models_dir

log = logging.getLogger(__name__)

#: ``progress(done_bytes, total_bytes)``; ``total_bytes`` is ``None`` when neither the server nor
#: the registry knows the size. Called from the downloading thread.
ProgressFn = Callable[[int, "int | None"], None]

CHUNK_BYTES = 1 << 20
USER_AGENT = f"zsas-gui/{__version__} (python-urllib)"
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _Interrupted(Exception):
    """A transfer broke off in a way that resuming may fix (network error, short body, 5xx)."""


def check_url(url: str, allow_insecure_localhost: bool = False) -> None:
    """Raise :class:`DownloadError` unless ``url`` is ``https://`` (or, for tests that pass
    ``allow_insecure_localhost=True``, ``http://`` to 127.0.0.1/localhost)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if allow_insecure_localhost and parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS:
        return
    raise DownloadError(f"refusing to download from {url!r}: only https:// URLs are allowed")


def part_path(target: Path) -> Path:
    """The partial-download file for ``target`` (``<file>.part`` in the same folder)."""
    return target.with_name(target.name + ".part")


def file_digest(path: str | os.PathLike, algo: str = "sha256", cancel: threading.Event | None = None,
                progress: ProgressFn | None = None, chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex digest of a file, read in chunks (``algo``: any hashlib name, e.g. sha256, md5)."""
    h = hashlib.new(algo)
    total = os.path.getsize(path)
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            if cancel is not None and cancel.is_set():
                raise DownloadError(f"cancelled: checking {path} was stopped")
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return h.hexdigest()


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """``None`` if the safetensors header is readable and accounts for the file size exactly,
    else what is wrong (cheap: reads only the header)."""
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if size < 8 or n > size - 8:
                return "not a safetensors file or truncated header"
            header = json.loads(fh.read(n))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return "unreadable safetensors header"
    if 8 + n + end != size:
        return f"safetensors data needs {8 + n + end} bytes but the file has {size} (truncated or corrupt)"
    return None


def verify(path: str | os.PathLike, spec: ModelSpec, cancel: threading.Event | None = None,
           progress: ProgressFn | None = None) -> tuple[bool, str]:
    """Check a file against ``spec``: size, then the published checksum (hashing in chunks).

    Returns ``(ok, message)``; without a published checksum only the size (and, for
    ``.safetensors``, the header) is checked and the message says "no published checksum".
    """
    path = Path(path)
    if not path.is_file():
        return False, f"missing: {path}"
    size = path.stat().st_size
    if spec.size_bytes is not None and size != spec.size_bytes:
        return False, (f"size is {size} bytes, expected {spec.size_bytes} "
                       f"({'incomplete' if size < spec.size_bytes else 'a different file'})")
    if spec.checksum is None or spec.checksum_algo is None:
        problem = safetensors_problem(path) if path.suffix == ".safetensors" else None
        if problem:
            return False, problem
        sized = "size matches" if spec.size_bytes is not None else "size not published"
        return True, f"{sized}; no published checksum, content not verified"
    got = file_digest(path, spec.checksum_algo, cancel=cancel, progress=progress)
    if got != spec.checksum.lower():
        return False, f"{spec.checksum_algo} mismatch: expected {spec.checksum}, got {got}"
    return True, f"{spec.checksum_algo} ok ({got[:16]}...)"


class _CheckedRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects (Hugging Face sends files via a CDN) only to allowed URLs."""

    def __init__(self, allow_insecure_localhost: bool) -> None:
        super().__init__()
        self.allow = allow_insecure_localhost

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, self.allow)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(url: str, allow_insecure_localhost: bool) -> urllib.request.OpenerDirector:
    local = urllib.parse.urlsplit(url).hostname in _LOCAL_HOSTS
    proxies = urllib.request.ProxyHandler({} if local else None)
    return urllib.request.build_opener(proxies, _CheckedRedirect(allow_insecure_localhost))


@contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """One download per target file at a time (across threads and processes, where fcntl exists)."""
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process lock; the checksum still catches a mix-up
        yield
        return
    lock = target.with_name(target.name + ".lock")
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DownloadError(f"another download of {target} is already running; "
                                f"wait for it to finish") from None
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _cancelled(spec: ModelSpec, part: Path, done: int, total: int | None) -> DownloadError:
    return DownloadError(f"cancelled: download of {spec.file_name} stopped at {format_size(done)} of "
                         f"{format_size(total)}; {part} is kept and the next download resumes it")


def _fetch(spec: ModelSpec, part: Path, progress: ProgressFn | None, cancel: threading.Event | None,
           timeout: float, chunk_bytes: int, allow_insecure_localhost: bool) -> None:
    """Bring ``part`` to the full length (one HTTP request). Raises _Interrupted or DownloadError."""
    expected = spec.size_bytes
    offset = part.stat().st_size if part.is_file() else 0
    if expected is not None and offset > expected:
        part.unlink()
        offset = 0
    if expected is not None and offset == expected:
        if progress is not None:
            progress(offset, expected)
        return  # complete already; verification decides
    if cancel is not None and cancel.is_set():
        raise _cancelled(spec, part, offset, expected)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(spec.url, headers=headers)
    try:
        response = _opener(spec.url, allow_insecure_localhost).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # our .part does not fit the file on the server
            part.unlink(missing_ok=True)
            raise _Interrupted("the server refused to resume; starting over") from exc
        if exc.code in _RETRY_STATUS:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(f"cannot download {spec.name}: HTTP {exc.code} {exc.reason} "
                            f"from {spec.url}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise _Interrupted(f"cannot reach {urllib.parse.urlsplit(spec.url).hostname}: {reason}") from exc
    with response:
        length = response.headers.get("Content-Length")
        if response.status == 206 and offset:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)
                raise _Interrupted("the server resumed at the wrong position; starting over")
            total = int(match.group(3)) if match.group(3) != "*" else expected
            mode = "ab"
        elif response.status == 200:
            if offset:
                log.info("%s ignored the Range request; downloading %s from the start",
                         urllib.parse.urlsplit(spec.url).hostname, spec.file_name)
            offset, mode = 0, "wb"
            total = int(length) if length and length.isdigit() else expected
        else:
            raise DownloadError(f"cannot download {spec.name}: unexpected HTTP {response.status} "
                                f"from {spec.url}")
        if expected is not None and total is not None and total != expected:
            raise DownloadError(f"{spec.url} serves {total} bytes but {spec.file_name} should be "
                                f"{expected}: the URL is wrong or the file on the server changed")
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if total - offset > free:
                raise DownloadError(f"not enough disk space for {spec.file_name} in {part.parent}: "
                                    f"needs {format_size(total - offset)}, {format_size(free)} free")
        done = offset
        with open(part, mode) as fh:
            if progress is not None:
                progress(done, total)
            while True:
                if cancel is not None and cancel.is_set():
                    raise _cancelled(spec, part, done, total)
                try:
                    chunk = response.read(chunk_bytes)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Interrupted(f"connection lost after {format_size(done)}: {exc!r}") from exc
                if not chunk:
                    break
                fh.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            fh.flush()
            os.fsync(fh.fileno())
    if total is not None and done < total:
        raise _Interrupted(f"connection closed after {done} of {total} bytes")


def download(spec: ModelSpec, dest_dir: str | os.PathLike | None = None,
             progress: ProgressFn | None = None, cancel: threading.Event | None = None, *,
             allow_insecure_localhost: bool = False, retries: int = 2, retry_wait: float = 2.0,
             timeout: float = 30.0, chunk_bytes: int = CHUNK_BYTES) -> Path:
    """Download ``spec`` into ``dest_dir`` (default: :func:`models_dir`) and return the file path.

    A file already in place that verifies is returned at once. Network failures are retried
    ``retries`` times (resuming, waiting ``retry_wait`` s, then twice that ...); then
    :class:`DownloadError` is raised with the ``.part`` kept. Setting ``cancel`` stops at the
    next chunk with ``DownloadError("cancelled: ...")``, ``.part`` kept. After the last byte the
    file is hashed (a few seconds for GB files; ``cancel`` works there too).
    ``allow_insecure_localhost`` admits ``http://127.0.0.1``/``localhost`` URLs, for tests only.
    """
    check_url(spec.url, allow_insecure_localhost)
    dest = Path(dest_dir).expanduser() if dest_dir is not None else models_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the model folder {dest}: {exc.strerror or exc}") from exc
    target = dest / spec.file_name
    part = part_path(target)
    if target.is_file():
        ok, message = verify(target, spec, cancel=cancel)
        if ok:
            if progress is not None:
                size = target.stat().st_size
                progress(size, size)
            return target
        log.warning("%s is there but %s; downloading it again", target, message)
    with _exclusive(target):
        attempt, wait = 0, retry_wait
        while True:
            try:
                _fetch(spec, part, progress, cancel, timeout, chunk_bytes, allow_insecure_localhost)
                break
            except _Interrupted as exc:
                have = part.stat().st_size if part.is_file() else 0
                if attempt >= retries or (cancel is not None and cancel.is_set()):
                    raise DownloadError(
                        f"download of {spec.file_name} failed: {exc}. {format_size(have)} kept in "
                        f"{part}; run the download again to resume") from exc
                attempt += 1
                log.warning("download of %s interrupted (%s); retry %d of %d in %.0f s",
                            spec.file_name, exc, attempt, retries, wait)
                if cancel is not None:
                    if cancel.wait(wait):
                        raise _cancelled(spec, part, have, spec.size_bytes) from exc
                else:
                    time.sleep(wait)
                wait *= 2
        ok, message = verify(part, spec, cancel=cancel)
        if not ok:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"downloaded {spec.file_name} failed verification: {message}. The partial file was "
                f"deleted. If this happens again, the file at {spec.url} differs from the registry "
                f"entry: fetch it yourself and pass it with --{spec.kind} PATH")
        try:
            os.replace(part, target)
        except OSError as exc:
            raise DownloadError(f"cannot move {part} to {target}: {exc.strerror or exc}") from exc
    log.info("downloaded %s (%s)", target, message)
    return target
