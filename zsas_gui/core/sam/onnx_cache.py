"""ONNX graphs exported from our torch modules: onnxruntime sessions and a verified disk cache.

    graphs = load_or_export(key, cache_dir, export_fn, verify_fn, args, threads)
    low, iou = graphs.run("mask", *arrays)

Cache layout: ``FOLDER/<key>/<name>.onnx`` (the graph) and ``<name>.data`` (its weights, ONNX
external data) plus ``manifest.json`` (written last) with the graph names and each file's
SHA-256. Callers build ``key`` with :func:`weights_key` (the weights, the export format, torch's
version), so a changed checkpoint never meets a stale graph. A file whose digest does not match,
or that onnxruntime cannot load, is deleted and exported again, never used.

A fresh export runs in a child process (:mod:`.onnx_subprocess`: torch's exporter holds the GIL
for long stretches; the caller only waits), which writes the graphs into a staging folder
beside the cache and verifies them there (``verify_fn``); the folder is then renamed into place,
so a cache folder is complete or absent. Staging folders are owned (:mod:`.staging`): those of a
process killed with SIGKILL are removed by the next load from the same cache. One process at a
time exports a key (``.<key>.lock`` beside the graphs): Ray actors and CLI runs that start
together wait for the first export and read it. Weights as external data keep the GIL short while a
session is created too: onnxruntime parses the small graph file holding the GIL (a 24 MB
graph with its weights inside held it ~40 ms) and reads the weights while initialising, without
it. Sessions are kept per process (one export per model and thread count).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_json
from ..models.download import file_digest
from .staging import Cancelled, exclusive, owned_folder, remove_stale

log = logging.getLogger(__name__)

#: cache layout version, part of every key
LAYOUT = 2
#: the staging folders an export writes into beside the cache (or in the temp folder)
STAGING_PREFIX = ".onnx-export-"
#: tensors above this many bytes go to the external data file
EXTERNAL_MIN_BYTES = 1024

_memory: dict[tuple[str, int], OrtGraphs] = {}
_memory_lock = threading.Lock()


def ort_available() -> bool:
    """True when onnxruntime (and onnx, which torch's exporter needs) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def weights_key(modules: Iterable, tag: str) -> str:
    """Hex key of the parameters and buffers of ``modules`` (torch), with ``tag`` (what is
    exported, its format version, the model id) and torch's version."""
    import torch

    h = hashlib.sha256(f"zsas-onnx-v{LAYOUT}|{tag}|{torch.__version__}".encode())
    for module in modules:
        for name, t in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


class OrtGraphs:
    """Named ONNX graphs (``{name: path of its .onnx file}``) in onnxruntime CPU sessions.
    ``run`` is thread-safe."""

    def __init__(self, graphs: dict[str, Path], threads: int):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads))
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting after a run: the next step (torch, the GUI) needs the cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = so.intra_op_num_threads
        self.sessions = {name: ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
                         for name, path in graphs.items()}
        self.inputs = {name: [i.name for i in s.get_inputs()] for name, s in self.sessions.items()}

    def run(self, graph: str, *arrays: np.ndarray) -> list[np.ndarray]:
        """Run ``graph`` on its inputs in declaration order; returns its outputs."""
        return self.sessions[graph].run(None, dict(zip(self.inputs[graph], arrays)))


def load_or_export(key: str, cache_dir: Path | None, export_fn: Callable[..., dict[str, bytes]],
                   verify_fn: Callable[..., object], args: tuple, threads: int) -> OrtGraphs:
    """Sessions for ``key``: from this process's memory, from ``cache_dir/key`` when its digests
    check out, else ``export_fn(*args)`` checked by ``verify_fn(OrtGraphs, *args)`` (which raises
    on a mismatch) in a child process, and saved to ``cache_dir`` when given. ``export_fn`` and
    ``verify_fn`` are module-level functions (the child imports them); ``args`` torch modules.
    One process at a time exports a key into ``cache_dir``; the others wait and read its graphs.
    Raises :class:`.onnx_subprocess.ExportFailed` when the export fails or is cancelled."""
    with _memory_lock:
        hit = _memory.get((key, threads))
        if hit is not None:
            return hit
        folder = cache_dir / key if cache_dir is not None else None
        if cache_dir is not None:
            remove_stale(cache_dir, STAGING_PREFIX)       # left by exports killed with SIGKILL
        ort_graphs = _from_disk(folder, threads)
        if ort_graphs is None:
            with _one_export_at_a_time(cache_dir, key):
                ort_graphs = _from_disk(folder, threads) or _export(folder, export_fn, verify_fn, args, threads)
        _memory[(key, threads)] = ort_graphs
        return ort_graphs


def _from_disk(folder: Path | None, threads: int) -> OrtGraphs | None:
    """Sessions over the verified graphs in ``folder``, or None (an unusable folder is deleted)."""
    graphs = read_graphs(folder) if folder is not None else None
    if graphs is None:
        return None
    try:
        return OrtGraphs(graphs, threads)
    except Exception as exc:  # noqa: BLE001 - any unloadable cached graph is exported again
        log.warning("cached ONNX graphs in %s unusable (%s); exporting again", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None


@contextmanager
def _one_export_at_a_time(cache_dir: Path | None, key: str) -> Iterator[None]:
    """Across processes, one export of ``key`` into ``cache_dir`` at a time (:func:`.staging.exclusive`,
    ``cache_dir/.<key>.lock``); a waiter stops when :func:`.onnx_subprocess.cancel_exports` is called."""
    from .onnx_subprocess import ExportFailed, cancel_count

    if cache_dir is None:
        yield
        return
    start = cancel_count()
    try:
        with exclusive(cache_dir / f".{key}.lock", lambda: cancel_count() != start):
            yield
    except Cancelled as exc:
        raise ExportFailed(f"cancelled while another process exported the same graphs ({exc})") from None


def _export(folder: Path | None, export_fn, verify_fn, args: tuple, threads: int) -> OrtGraphs:
    """Export in a child into an owned staging folder (:mod:`.staging`) beside ``folder`` when it
    can be written, else in the temp folder, then rename it to ``folder``; the staging folder
    never outlives this process (nor, when the process is killed, the next export)."""
    from .onnx_subprocess import ExportFailed, export_in_subprocess

    with ExitStack() as stack:
        staging = None
        if folder is not None:
            try:
                folder.parent.mkdir(parents=True, exist_ok=True)
                staging = stack.enter_context(owned_folder(folder.parent, STAGING_PREFIX))
            except OSError as exc:     # a cache that cannot be written only costs the export time
                log.info("ONNX graphs not cached in %s: %s", folder.parent, exc)
        if staging is None:
            remove_stale(tempfile.gettempdir(), STAGING_PREFIX)
            staging = stack.enter_context(owned_folder(tempfile.gettempdir(), STAGING_PREFIX))
        out = staging.path / "graphs"
        export_in_subprocess(export_fn, verify_fn, args, threads, out, hold=(staging,))
        graphs = read_graphs(out)
        if graphs is None:
            raise ExportFailed("the ONNX export process wrote no usable graphs")
        if folder is not None and staging.path.parent == folder.parent:
            shutil.rmtree(folder, ignore_errors=True)          # a corrupt or unloadable one
            try:
                os.replace(out, folder)
                graphs = {name: folder / path.name for name, path in graphs.items()}
            except OSError as exc:
                log.info("ONNX graphs not cached in %s: %s", folder, exc)
        return OrtGraphs(graphs, threads)          # (on Linux a session keeps a removed file's data)


def read_graphs(folder: Path) -> dict[str, Path] | None:
    """The graphs :func:`write_graphs` wrote in ``folder`` ({name: path of its .onnx file}), or
    None when there are none or a file does not match the manifest (then the folder is deleted)."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        names, digests = list(meta["graphs"]), dict(meta["sha256"])
        if not names or any(f"{n}.onnx" not in digests for n in names):
            raise ValueError("no graphs listed")
        for file, digest in digests.items():
            if file_digest(folder / file) != digest:
                raise ValueError(f"{file} does not match its recorded SHA-256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("cached ONNX graphs in %s are corrupt (%s); exporting again", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return {name: folder / f"{name}.onnx" for name in names}


def write_graphs(folder: Path, graphs: dict[str, bytes]) -> None:
    """Each graph (ONNX bytes) as ``folder/<name>.onnx`` with its weights in ``<name>.data``, then
    ``manifest.json`` with the names and every file's SHA-256 (last: a folder without it is not
    read). ``folder`` is new (a staging folder): the files need not be written atomically."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    for name, data in graphs.items():
        onnx.save_model(onnx.load_from_string(data), str(folder / f"{name}.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=f"{name}.data", size_threshold=EXTERNAL_MIN_BYTES)
    files = sorted(p.name for p in folder.iterdir() if p.name != "manifest.json")
    atomic_write_json(folder / "manifest.json",
                      {"graphs": sorted(graphs), "sha256": {f: file_digest(folder / f) for f in files}})


def export_onnx(module, args: tuple, input_names: list[str], output_names: list[str],
                dynamic_axes: dict | None = None) -> bytes:
    """``torch.onnx.export`` (TorchScript exporter, opset 17) of ``module`` to bytes."""
    import io
    import warnings

    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")            # tracer chatter; callers verify the result
        torch.onnx.export(module.eval(), args, buf, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes or {}, opset_version=17, dynamo=False)
    return buf.getvalue()


def clear_memory() -> None:
    """Forget the sessions held by this process (tests)."""
    with _memory_lock:
        _memory.clear()
