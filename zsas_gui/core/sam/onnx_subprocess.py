"""torch's ONNX export in a child process, so the thread that needs the graphs holds no GIL.

    export_in_subprocess(export_fn, verify_fn, args, threads, out)   # verified graphs in out/
    cancel_exports()                                                 # the app is closing

``torch.onnx.export`` (its TorchScript passes) and checking a fresh export against torch hold the
GIL for up to ~300 ms at a time; run on the app's lane thread, that froze the window while the
models warmed up (docs/app.md, "Model warm-up"). Here the exporting thread only waits on a child,
``python -m zsas_gui.core.sam.onnx_subprocess JOB OUT``, which:

1. loads JOB (``torch.save`` of ``export_fn`` and ``verify_fn``, module-level functions pickled by
   reference, ``args``, the torch modules, pickled by value, and the thread count) with
   ``torch.load(weights_only=True)``: only our exporters' functions and the ``nn.Module`` classes
   of :data:`MODULE_PACKAGES` may be built from it (no arbitrary unpickling);
2. exports ``export_fn(*args)`` ({name: ONNX bytes}) and writes the graphs into OUT
   (:func:`.onnx_cache.write_graphs`: weights as external data, a manifest of SHA-256 last);
3. verifies what it wrote: ``verify_fn(OrtGraphs(OUT), *args)`` raises on a mismatch.

A crashed, failed or killed child raises :class:`ExportFailed` with its last error line (callers
fall back to the torch decoder) and its OUT is removed. The job folder in the temp folder is
owned (:mod:`.staging`) by the parent and the child: when both were killed, the next export
removes it. The child inherits the scheduling priority
of the thread that starts it (the app's lane runs at nice +5, ``qt/lane.py``), exits when its
parent goes away (its stdin closes), and is killed when the waiting thread is interrupted or
:func:`cancel_exports` is called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from .staging import OwnedFolder, owned_folder, remove_stale

#: the job folders in the temp folder (torch.save of the modules, the child's stderr)
WORK_PREFIX = "zsas-onnx-export-"

_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()
_cancels = 0


class ExportFailed(RuntimeError):
    """The export child failed, crashed or was cancelled; the message says which and why."""


def export_in_subprocess(export_fn: Callable[..., dict[str, bytes]], verify_fn: Callable[..., object],
                         args: tuple, threads: int, out: Path, hold: Sequence[OwnedFolder] = ()) -> None:
    """``export_fn(*args)`` verified by ``verify_fn(OrtGraphs, *args)``, run in a child process
    that writes the graphs into the new folder ``out`` (:func:`.onnx_cache.write_graphs`). The
    child keeps the owner locks of its job folder and of ``hold`` (:mod:`.staging`): those folders
    stay owned while it runs, even after its parent is killed. Raises :class:`ExportFailed` (then
    ``out`` is removed)."""
    import torch

    tmp = tempfile.gettempdir()
    remove_stale(tmp, WORK_PREFIX)                    # job folders of killed parents
    with owned_folder(tmp, WORK_PREFIX) as work:
        job, err_path = work.path / "job.pt", work.path / "stderr.txt"
        torch.save({"export": export_fn, "verify": verify_fn, "args": tuple(args),
                    "threads": max(1, int(threads))}, job)
        locks = [f.fd for f in (work, *hold) if f.fd >= 0]
        with open(err_path, "wb") as err:
            rc = _run_child([sys.executable, "-m", __name__, str(job), str(out)], err, locks)
        if rc != 0:
            shutil.rmtree(out, ignore_errors=True)
            raise ExportFailed(_failure_message(rc, err_path))


def cancel_exports() -> int:
    """Kill every export child of this process (their callers raise :class:`ExportFailed`) and
    stop those waiting for another process's export (:func:`cancel_count`). Returns how many
    children were killed (those still running)."""
    global _cancels
    with _running_lock:
        _cancels += 1
        procs = list(_running)
    return sum(_kill(proc) for proc in procs)


def cancel_count() -> int:
    """How many times :func:`cancel_exports` was called: a waiter that sees it change gives up."""
    with _running_lock:
        return _cancels


def export_pids() -> list[int]:
    """Process ids of this process's export children now (tests, diagnostics)."""
    with _running_lock:
        return [proc.pid for proc in _running]


def _run_child(cmd: list[str], err, locks: list[int]) -> int:
    env = dict(os.environ)
    # the child imports what the parent imports (a source checkout, a benchmark's sys.path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, env=env,
                            pass_fds=locks)
    with _running_lock:
        _running.add(proc)
    try:
        return proc.wait()            # blocks without the GIL
    finally:
        _kill(proc)                   # interrupted (KeyboardInterrupt, ...): no child left behind
        with _running_lock:
            _running.discard(proc)


def _kill(proc: subprocess.Popen) -> bool:
    """Kill ``proc`` if it still runs (True then) and reap it."""
    running = proc.poll() is None
    if running:
        proc.kill()
    proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()
    return running


def _failure_message(rc: int, err_path: Path) -> str:
    if rc < 0:
        return f"the ONNX export process was stopped (signal {-rc})"
    try:
        lines = [ln for ln in err_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    reason = lines[-1].strip() if lines else "no message"
    return f"the ONNX export process failed (exit {rc}): {reason}"


def _exit_with_parent() -> None:
    """Child: the parent holds our stdin open while it waits; EOF means it is gone."""
    try:
        while os.read(sys.stdin.fileno(), 4096):   # the raw descriptor: no lock held at exit
            pass
    finally:
        os._exit(3)


def _child_main(job_path: str, out: str) -> int:
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    import torch

    from .onnx_cache import OrtGraphs, read_graphs, write_graphs

    with torch.serialization.safe_globals(_allowed_globals()):
        job = torch.load(job_path, weights_only=True)     # only the allowed classes are built
    torch.set_num_threads(job["threads"])
    write_graphs(Path(out), job["export"](*job["args"]))
    job["verify"](OrtGraphs(read_graphs(Path(out)), job["threads"]), *job["args"])   # what was written
    return 0


#: packages whose torch modules a job may hold (SAM's decoder and encoders, our restructured
#: decoder, MobileSAM's TinyViT when installed); nothing else is built from the job file
MODULE_PACKAGES = ("torch.nn.modules", "segment_anything.modeling", "zsas_gui.core.sam.decoder_core",
                   "mobile_sam.modeling.tiny_vit_sam")


def _allowed_globals() -> list:
    """What ``torch.load(weights_only=True)`` may build from a job: the ``nn.Module`` classes of
    :data:`MODULE_PACKAGES` and the export/verify functions of our exporters."""
    import importlib
    import inspect
    import pkgutil

    import torch

    from . import fast_encoder, onnx_decoder

    allowed: list = [onnx_decoder.export_graphs, onnx_decoder.verify,
                     fast_encoder.export_encoder, fast_encoder.verify_encoder]
    for package in MODULE_PACKAGES:
        try:
            mod = importlib.import_module(package)
        except ImportError:          # an optional model package that is not installed
            continue
        names = [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(getattr(mod, "__path__", []))]
        for name in names:
            allowed += [c for _, c in inspect.getmembers(importlib.import_module(name), inspect.isclass)
                        if issubclass(c, torch.nn.Module)]
    return allowed


if __name__ == "__main__":
    raise SystemExit(_child_main(*sys.argv[1:]))
