"""What an ONNX export killed with SIGKILL leaves behind is removed by the next export, never a
live export's folders; processes that need the same graphs at once export them once."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from test_onnx_subprocess import GUARD_S, _gone, _wait_for

from zsas_gui.core.sam import onnx_cache, onnx_decoder, onnx_subprocess, staging
from zsas_gui.core.sam.decoder_core import DecoderCore

pytestmark = pytest.mark.skipif(staging.fcntl is None, reason="owner locks need fcntl (POSIX)")

#: a process that exports the tiny SAM's decoder graphs into CACHE (argv: sam dir, cache dir);
#: prints "child PID" when its export child runs, "exported" when it ran an export, "done" at the end
EXPORTER = """
import logging, sys, threading, time
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from pathlib import Path
from zsas_gui.core.models.loading import load_sam
from zsas_gui.core.sam import onnx_decoder, onnx_subprocess
from zsas_gui.core.sam.decoder_core import DecoderCore
sam = load_sam(sys.argv[1], device="cpu")
core = DecoderCore(sam.model).eval()
real = onnx_subprocess.export_in_subprocess
def counted(*args, **kwargs):
    print("exported", flush=True)
    return real(*args, **kwargs)
onnx_subprocess.export_in_subprocess = counted
def tell_child():
    while not onnx_subprocess.export_pids():
        time.sleep(0.01)
    print("child", onnx_subprocess.export_pids()[0], flush=True)
threading.Thread(target=tell_child, daemon=True).start()
onnx_decoder.load_decoder_graphs(core, sam.model, "m", Path(sys.argv[2]), 1)
print("done", flush=True)
"""


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A temp folder for this test, in this process and in the processes it starts."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _start_exporter(sam_dir, cache) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", EXPORTER, str(sam_dir), str(cache)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})


def _read_until(proc: subprocess.Popen, prefix: str) -> str:
    """The first line of ``proc``'s output that starts with ``prefix`` (all lines read are kept in
    ``proc.seen``); fails when the output ends first."""
    proc.seen = getattr(proc, "seen", [])
    for line in proc.stdout:
        proc.seen.append(line)
        if line.startswith(prefix):
            return line
    pytest.fail(f"no line starting with {prefix!r}; output:\n{''.join(proc.seen)}")


def _leftovers(cache, tmp):
    return ([p.name for p in cache.iterdir() if p.name.startswith(onnx_cache.STAGING_PREFIX)],
            [p.name for p in tmp.iterdir() if p.name.startswith(onnx_subprocess.WORK_PREFIX)])


def test_the_folders_of_an_export_killed_with_sigkill_are_removed_by_the_next_one(tiny_models, tiny_bundles,
                                                                                  tmp_path, private_tmp):
    cache = tmp_path / "cache"
    with _start_exporter(tiny_models[1], cache) as proc:
        child = int(_read_until(proc, "child").split()[1])
        os.kill(child, signal.SIGSTOP)              # the export child, alive, keeps its folders owned
        os.kill(proc.pid, signal.SIGKILL)           # its parent dies without any cleanup
    staged, jobs = _leftovers(cache, private_tmp)
    assert len(staged) == 1 and len(jobs) == 1  # what a killed export leaves

    assert staging.remove_stale(cache, onnx_cache.STAGING_PREFIX) == 0          # still owned
    assert staging.remove_stale(private_tmp, onnx_subprocess.WORK_PREFIX) == 0
    assert _leftovers(cache, private_tmp) == (staged, jobs)

    os.kill(child, signal.SIGKILL)
    _wait_for(lambda: _gone(child), f"export child {child} to die")
    onnx_cache.clear_memory()
    sam = tiny_bundles[1]
    core = DecoderCore(sam.model).eval()
    graphs = onnx_decoder.load_decoder_graphs(core, sam.model, "m", cache, threads=1)   # the next run
    assert onnx_decoder.verify(graphs, core) <= onnx_decoder.EXPORT_TOLERANCE
    assert _leftovers(cache, private_tmp) == ([], [])
    assert [p.name for p in cache.iterdir()] == [graphs_key(sam, core)]   # the graphs, no lock file
    onnx_cache.clear_memory()


def graphs_key(sam, core) -> str:
    from zsas_gui.core.sam.onnx_cache import weights_key

    return weights_key([sam.model.prompt_encoder, sam.model.mask_decoder], f"decoder-v{onnx_decoder.FORMAT}|m")


REMOVER = """
import sys
from zsas_gui.core.sam import staging
print(staging.remove_stale(sys.argv[1], sys.argv[2]))
"""


def test_a_live_exports_folder_is_never_removed_and_an_unlocked_one_only_when_old(tmp_path):
    def remove_from_another_process(prefix: str) -> int:
        out = subprocess.run([sys.executable, "-c", REMOVER, str(tmp_path), prefix], capture_output=True,
                             text=True, check=True, timeout=GUARD_S,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        return int(out.stdout)

    with staging.owned_folder(tmp_path, ".onnx-export-") as live:
        (live.path / "graphs").mkdir()
        assert remove_from_another_process(".onnx-export-") == 0
        assert staging.remove_stale(tmp_path, ".onnx-export-") == 0      # this process's other descriptor
        assert (live.path / "graphs").is_dir()
    assert not live.path.exists()                                         # its owner removed it

    old_style = tmp_path / ".onnx-export-oldversion"                     # no owner file
    old_style.mkdir()
    assert remove_from_another_process(".onnx-export-") == 0              # young: maybe being made
    hours_ago = time.time() - staging.UNLOCKED_STALE_S - 60
    os.utime(old_style, (hours_ago, hours_ago))
    assert remove_from_another_process(".onnx-export-") == 1
    assert list(tmp_path.iterdir()) == []


def test_two_processes_needing_the_same_graphs_export_them_once(tiny_models, tmp_path, private_tmp):
    cache = tmp_path / "cache"
    with _start_exporter(tiny_models[1], cache) as first:
        child = int(_read_until(first, "child").split()[1])
        os.kill(child, signal.SIGSTOP)                # the first export holds the key's lock, paused
        try:
            second = _start_exporter(tiny_models[1], cache)
            _read_until(second, "waiting for another process")
        finally:
            os.kill(child, signal.SIGCONT)
        with second:
            for proc in (first, second):
                _read_until(proc, "done")
                assert proc.wait(GUARD_S) == 0
    assert sum(line.startswith("exported") for line in first.seen) == 1
    assert not any(line.startswith("exported") for line in second.seen), "".join(second.seen)
    assert len(list(cache.iterdir())) == 1 and _leftovers(cache, private_tmp) == ([], [])


def test_waiting_for_another_process_stops_when_exports_are_cancelled(tiny_bundles, tmp_path, caplog):
    sam = tiny_bundles[1]
    core = DecoderCore(sam.model).eval()
    cache = tmp_path / "cache"
    onnx_cache.clear_memory()
    errors = []

    def load():
        try:
            onnx_decoder.load_decoder_graphs(core, sam.model, "m", cache, threads=1)
        except onnx_subprocess.ExportFailed as exc:
            errors.append(str(exc))

    with caplog.at_level(logging.INFO), staging.exclusive(cache / f".{graphs_key(sam, core)}.lock"):
        worker = threading.Thread(target=load)       # another descriptor: it waits like a process
        worker.start()
        _wait_for(lambda: "waiting for another process" in caplog.text, "the loader to wait")
        onnx_subprocess.cancel_exports()             # the app is closing
        worker.join(GUARD_S)
    assert not worker.is_alive()
    assert errors and "cancelled while another process exported" in errors[0]
    assert list(cache.iterdir()) == []               # nothing written, the lock file removed
    onnx_cache.clear_memory()


def test_a_test_models_graphs_exported_by_one_process_serve_the_next(tiny_models, tmp_path, monkeypatch):
    """Every CLI run and every Ray actor with the tiny models exported their graphs again (5-20 s
    each): random-weight test models skipped the disk cache. A model read from a file, test
    model or not, is now cached under its weights' key (D42)."""
    from PIL import Image
    from synthetic import blob_image

    from zsas_gui.core.models.loading import load_sam
    from zsas_gui.core.sam.backends import Sam1Backend

    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "models"))
    (tmp_path / "in").mkdir()
    Image.fromarray(blob_image((64, 80), [(30, 30)])).save(tmp_path / "in" / "a.png")
    clip, sam_dir = tiny_models
    subprocess.run([sys.executable, "-m", "zsas_gui.cli", "segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                    "--clip", str(clip), "--sam", str(sam_dir), "--device", "cpu"], check=True, capture_output=True,
                   timeout=GUARD_S, env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    assert len(list((tmp_path / "models" / "decoders").iterdir())) == 2      # the encoder's and the decoder's

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_subprocess, "export_in_subprocess", no_export)
    onnx_cache.clear_memory()                                                # as a new process
    backend = Sam1Backend(load_sam(str(sam_dir), device="cpu"))
    assert backend.image_encoder() is not None and backend.decoder_name == "onnx"
    onnx_cache.clear_memory()


def test_a_file_system_without_flock_still_caches_the_graphs(tiny_bundles, tmp_path, monkeypatch):
    """Some network file systems refuse flock (ENOLCK): the export then runs unguarded, its
    staging folder falls back to the age rule, and the graphs are still cached."""
    import errno

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    sam = tiny_bundles[1]
    core = DecoderCore(sam.model).eval()
    monkeypatch.setattr(staging.fcntl, "flock", no_flock)
    onnx_cache.clear_memory()
    graphs = onnx_decoder.load_decoder_graphs(core, sam.model, "m", tmp_path / "cache", threads=1)
    assert onnx_decoder.verify(graphs, core) <= onnx_decoder.EXPORT_TOLERANCE
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [graphs_key(sam, core)]
    onnx_cache.clear_memory()
