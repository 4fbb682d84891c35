"""ONNX graphs exported from our torch modules: onnxruntime sessions and a verified disk cache.

    graphs = load_or_export(key, cache_dir, export_fn, verify_fn, threads)
    low, iou = graphs.run("mask", *arrays)

Cache layout: ``FOLDER/<key>/<name>.onnx`` plus ``manifest.json`` (written last, atomically) with
each file's SHA-256. Callers build ``key`` with :func:`weights_key` (the weights, the export
format and torch's version), so a changed checkpoint never meets a stale graph. A file whose
digest does not match, or that onnxruntime cannot load, is deleted and exported again, never
used. A fresh export is verified (``verify_fn``) before it is used or saved. Sessions are kept per
process (one export per model and thread count).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..io.atomic import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

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

    h = hashlib.sha256(f"zsas-onnx|{tag}|{torch.__version__}".encode())
    for module in modules:
        for name, t in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


class OrtGraphs:
    """Named ONNX graphs in onnxruntime CPU sessions. ``run`` is thread-safe."""

    def __init__(self, graphs: dict[str, bytes], threads: int):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads))
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting after a run: the next step (torch, the GUI) needs the cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = so.intra_op_num_threads
        self.sessions = {name: ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
                         for name, data in graphs.items()}
        self.inputs = {name: [i.name for i in s.get_inputs()] for name, s in self.sessions.items()}

    def run(self, graph: str, *arrays: np.ndarray) -> list[np.ndarray]:
        """Run ``graph`` on its inputs in declaration order; returns its outputs."""
        return self.sessions[graph].run(None, dict(zip(self.inputs[graph], arrays)))


def load_or_export(key: str, cache_dir: Path | None, export_fn: Callable[[], dict[str, bytes]],
                   verify_fn: Callable[[OrtGraphs], object], threads: int) -> OrtGraphs:
    """Sessions for ``key``: from this process's memory, from ``cache_dir/key`` when its digests
    check out, else ``export_fn()`` checked by ``verify_fn`` (which raises on a mismatch) and
    saved to ``cache_dir`` when given."""
    with _memory_lock:
        hit = _memory.get((key, threads))
        if hit is not None:
            return hit
        folder = cache_dir / key if cache_dir is not None else None
        graphs = _read_cached(folder) if folder is not None else None
        ort_graphs = None
        if graphs is not None:
            try:
                ort_graphs = OrtGraphs(graphs, threads)
            except Exception as exc:  # noqa: BLE001 - any unloadable cached graph is exported again
                log.warning("cached ONNX graphs in %s unusable (%s); exporting again", folder, exc)
                shutil.rmtree(folder, ignore_errors=True)
        if ort_graphs is None:
            graphs = export_fn()
            ort_graphs = OrtGraphs(graphs, threads)
            verify_fn(ort_graphs)
            if folder is not None:
                _write_cached(folder, graphs)
        _memory[(key, threads)] = ort_graphs
        return ort_graphs


def _read_cached(folder: Path) -> dict[str, bytes] | None:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        graphs = {name: (folder / f"{name}.onnx").read_bytes() for name in meta["sha256"]}
        for name, data in graphs.items():
            if hashlib.sha256(data).hexdigest() != meta["sha256"][name]:
                raise ValueError(f"{name}.onnx does not match its recorded SHA-256")
        if not graphs:
            raise ValueError("no graphs listed")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("cached ONNX graphs in %s are corrupt (%s); exporting again", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return graphs


def _write_cached(folder: Path, graphs: dict[str, bytes]) -> None:
    try:
        for name, data in graphs.items():
            atomic_write_bytes(folder / f"{name}.onnx", data)
        atomic_write_json(folder / "manifest.json",
                          {"sha256": {n: hashlib.sha256(d).hexdigest() for n, d in graphs.items()}})
    except OutputError as exc:   # a cache that cannot be written only costs the export time
        log.info("ONNX graphs not cached: %s", exc)


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
