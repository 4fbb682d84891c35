"""Which steps of the model warm-up hold the GIL, and for how long? A probe thread sleeps 1 ms in a
loop; the longest gap between its wake-ups while a step runs on the main thread is that step's
longest GIL hold (plus any wait for a CPU core on a loaded machine).

    python benchmarks/bench_warmup.py            # full-size random-weight SAM ViT-B decoder

Prints ``name: value`` lines: ``gil_hold_ms.STEP`` (longest gap) and ``seconds.STEP`` per step of
building the ONNX decoder: what the lane did before (export, sessions over graphs holding their
weights, verification, all in-process), then what it does now (sessions over graphs with external
weights; the whole load with the export in a subprocess, which it only waits on; the load from
the disk cache; the prompt-token tables).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, random_sam_bundle


class Probe:
    """A thread that wakes every 1 ms; ``max_gap_ms`` is its longest gap since ``reset``."""

    def __init__(self):
        self.max_gap_ms = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            self.max_gap_ms = max(self.max_gap_ms, (now - last) * 1e3 - 1.0)
            last = now

    def measure(self, name: str, fn):
        time.sleep(0.02)
        self.max_gap_ms = 0.0
        t0 = time.perf_counter()
        out = fn()
        emit(f"seconds.{name}", round(time.perf_counter() - t0, 3))
        emit(f"gil_hold_ms.{name}", round(self.max_gap_ms, 1))
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    import torch

    from zsas_gui.core.sam import onnx_cache, onnx_decoder
    from zsas_gui.core.sam.decoder_core import DecoderCore
    from zsas_gui.core.sam.prompt_tokens import PromptTokens

    emit("load_average_1min_at_start", os.getloadavg()[0])
    emit("torch_threads", torch.get_num_threads())
    sam = random_sam_bundle("vit_b")
    import onnx  # noqa: F401 - imported up front, as the window does (D24)
    import onnxruntime

    probe = Probe()
    core = probe.measure("decoder_core", lambda: DecoderCore(sam.model).eval())
    key = probe.measure("weights_key", lambda: onnx_cache.weights_key(
        [sam.model.prompt_encoder, sam.model.mask_decoder], "bench"))
    graphs = probe.measure("export_in_process", lambda: onnx_decoder.export_graphs(core))
    so = onnxruntime.SessionOptions()
    probe.measure("sessions_weights_inside", lambda: [
        onnxruntime.InferenceSession(data, so, providers=["CPUExecutionProvider"]) for data in graphs.values()])
    with tempfile.TemporaryDirectory() as tmp:
        onnx_cache.write_graphs(Path(tmp) / "g", graphs)
        ort = probe.measure("sessions_weights_external", lambda: onnx_cache.OrtGraphs(
            onnx_cache.read_graphs(Path(tmp) / "g"), 2))
        probe.measure("verify_in_process", lambda: onnx_decoder.verify(ort, core))
    with tempfile.TemporaryDirectory() as tmp:
        onnx_cache.clear_memory()
        probe.measure("load_decoder_graphs_subprocess_export", lambda: onnx_decoder.load_decoder_graphs(
            core, sam.model, sam.model_id, Path(tmp), 2))
        onnx_cache.clear_memory()
        probe.measure("load_decoder_graphs_from_disk_cache", lambda: onnx_decoder.load_decoder_graphs(
            core, sam.model, sam.model_id, Path(tmp), 2))
    probe.measure("prompt_tokens", lambda: PromptTokens(sam.model.prompt_encoder))
    emit("key", key)
    probe.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
