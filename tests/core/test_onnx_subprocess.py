"""torch's ONNX export runs in a child process (the caller only waits, without the GIL): it
gives the verified graphs, a failed or killed child falls back to the torch decoder with the
reason logged, and no file and no process is left behind."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import torch

from zsas_gui.core.sam import onnx_cache, onnx_decoder, onnx_subprocess
from zsas_gui.core.sam.decoder_core import DecoderCore
from zsas_gui.core.sam.fast_decoder import make_decoder

GUARD_S = 300      # a guard against a hang, never the expected time


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder for this test only: what the export leaves there can be seen."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _wait_for(cond, what: str):
    deadline = time.monotonic() + GUARD_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _gone(pid: int) -> bool:
    """The process has exited (a zombie not reaped by an init that does not reap counts too)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return True


def test_the_export_runs_in_a_child_and_leaves_only_the_cache(tiny_bundles, tmp_path, private_tmp, monkeypatch):
    sam = tiny_bundles[1]
    core = DecoderCore(sam.model).eval()

    def no_export_here(*args, **kwargs):
        raise AssertionError("torch.onnx.export ran in the caller's process")

    monkeypatch.setattr(torch.onnx, "export", no_export_here)
    onnx_cache.clear_memory()
    graphs = onnx_decoder.load_decoder_graphs(core, sam.model, "m", tmp_path / "cache", threads=1)
    assert onnx_decoder.verify(graphs, core) <= onnx_decoder.EXPORT_TOLERANCE
    (folder,) = (tmp_path / "cache").iterdir()                  # no staging folder left beside it
    assert {p.name for p in folder.iterdir()} == {
        "image.onnx", "nomask.onnx", "mask.onnx", "image.data", "nomask.data", "mask.data", "manifest.json"}
    assert list(private_tmp.iterdir()) == [] and onnx_subprocess.export_pids() == []
    onnx_cache.clear_memory()


def test_a_failing_export_reports_the_childs_error_and_writes_nothing(tmp_path, private_tmp):
    onnx_cache.clear_memory()
    not_a_decoder = torch.nn.Linear(2, 2)           # export_graphs needs a DecoderCore: it raises
    with pytest.raises(onnx_subprocess.ExportFailed, match=r"exit 1\): AttributeError: .*Linear"):
        onnx_cache.load_or_export("k", tmp_path / "cache", onnx_decoder.export_graphs, onnx_decoder.verify,
                                  (not_a_decoder,), threads=1)
    assert list((tmp_path / "cache").iterdir()) == []          # the staging folder removed
    assert list(private_tmp.iterdir()) == [] and onnx_subprocess.export_pids() == []


def test_a_killed_export_falls_back_to_torch_and_leaves_no_file_or_process(tiny_bundles, tmp_path, private_tmp,
                                                                           caplog):
    sam = tiny_bundles[1]
    onnx_cache.clear_memory()
    engines = []
    with caplog.at_level(logging.WARNING):
        worker = threading.Thread(target=lambda: engines.append(make_decoder(sam, "onnx", 1, tmp_path / "cache")))
        worker.start()
        _wait_for(onnx_subprocess.export_pids, "the export child")
        (pid,) = onnx_subprocess.export_pids()
        assert onnx_subprocess.cancel_exports() == 1           # killed while it was running
        worker.join(GUARD_S)
    assert not worker.is_alive()
    assert engines[0].backend == "fast"                        # the torch decoder path
    assert "ONNX decoder unavailable" in caplog.text and "stopped (signal" in caplog.text
    assert _gone(pid) and onnx_subprocess.export_pids() == []
    assert list((tmp_path / "cache").iterdir()) == []          # nothing half-written
    assert list(private_tmp.iterdir()) == []
    onnx_cache.clear_memory()


PARENT = """
import os, sys, threading, time, torch
from zsas_gui.core.models.loading import load_sam
from zsas_gui.core.sam import onnx_decoder, onnx_subprocess
from zsas_gui.core.sam.decoder_core import DecoderCore
core = DecoderCore(load_sam(sys.argv[1], device="cpu").model).eval()
out = sys.argv[2] + "/graphs"
threading.Thread(target=onnx_subprocess.export_in_subprocess, daemon=True,
                 args=(onnx_decoder.export_graphs, onnx_decoder.verify, (core,), 1, out)).start()
while not onnx_subprocess.export_pids():
    time.sleep(0.01)
print(onnx_subprocess.export_pids()[0], flush=True)
os._exit(0)                                  # dies without cleaning up, as a killed app would
"""


def test_the_export_child_exits_when_its_parent_dies(tiny_models, tmp_path):
    out = subprocess.run([sys.executable, "-c", PARENT, str(tiny_models[1]), str(tmp_path)], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=GUARD_S)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[-1])
    _wait_for(lambda: _gone(pid), f"export child {pid} to exit after its parent")


def test_a_cache_folder_that_cannot_be_written_only_costs_the_export(tiny_bundles, tmp_path, private_tmp):
    sam = tiny_bundles[1]
    core = DecoderCore(sam.model).eval()
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    onnx_cache.clear_memory()
    graphs = onnx_decoder.load_decoder_graphs(core, sam.model, "m", blocked / "cache", threads=1)
    assert onnx_decoder.verify(graphs, core) <= onnx_decoder.EXPORT_TOLERANCE
    assert list(private_tmp.iterdir()) == []                   # the staging folder removed
    onnx_cache.clear_memory()
