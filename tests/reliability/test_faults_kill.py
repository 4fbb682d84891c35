"""The process killed (SIGKILL: no cleanup runs) at random moments while it writes: every record
on disk still parses, every mask it names exists and fits, and the next process carries on.
``zsas segment`` killed mid-run leaves only whole output files."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import blob_image

from zsas_gui.core.io.imageio import save_png
from zsas_gui.state.project import Project

REPO = Path(__file__).resolve().parents[2]
HW = (512, 640)   # masks of a few hundred kB: each save spends real time in write + fsync

WRITER = textwrap.dedent("""
    import sys, numpy as np
    from zsas_gui.state.project import Project
    proj = Project.open(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]))
    rels = [e.rel for e in proj.images]
    i = 0
    while True:
        rel = rels[i % len(rels)]
        rec = proj.load(rel)
        rec.mask = rng.random((512, 640)) < 0.5          # noise: large PNGs
        rec.status = ("accepted", "edited", "unreviewed")[i % 3]
        rec.provenance = {"mask_source": "edited", "round": i}
        proj.save(rec)
        print(i, flush=True)
        i += 1
""")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _kill_after(cmd: list[str], delay: float, min_lines: int = 0, ready=None) -> list[str]:
    """Start ``cmd``; once it printed ``min_lines`` lines (or ``ready()`` is true), wait ``delay`` s
    and SIGKILL it. Returns its stdout lines."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
    lines = []
    try:
        if ready is not None:
            deadline = time.monotonic() + 120
            while not ready():
                assert proc.poll() is None, "the process ended before the kill"
                assert time.monotonic() < deadline, "the process never got ready"
                time.sleep(0.02)
        while len(lines) < min_lines:
            line = proc.stdout.readline()
            assert line, "the writer exited early"
            lines.append(line)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the process was not killed (rc {proc.returncode})"
    return lines + out.splitlines()


def _check_store(root: Path) -> int:
    """Every record parses and its mask exists with the image's size; returns the record count."""
    proj = Project.open(root)
    assert proj.problems == [], proj.problems
    n = 0
    for e in proj.images:
        if proj.has_record(e.rel):
            rec = proj.load(e.rel)
            assert proj.problems == [], proj.problems
            assert rec.mask is not None and rec.mask.shape == HW
            n += 1
    for path in (root / ".zsas" / "records").rglob("*.json"):
        json.loads(path.read_text())
    return n


@pytest.mark.slow
def test_store_survives_sigkill_at_random_moments(tmp_path):
    root = tmp_path / "parts"
    for i in range(3):
        save_png(root / "sub" / f"{i}.png", blob_image(HW, [(40 * (i + 1), 60)], seed=i))
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(1234)
    saves = 0
    for round_ in range(6):
        lines = _kill_after([sys.executable, str(script), str(root), str(round_)],
                            delay=rng.uniform(0.0, 0.4), min_lines=rng.randint(0, 3))
        saves += len(lines)
        _check_store(root)
    assert saves >= 6, "the writer never got to save: the kills tested nothing"
    assert _check_store(root) == 3
    # a kill between mkstemp and rename can leave a hidden temp file: never read as data
    stray = [p for p in (root / ".zsas").rglob("*") if p.is_file() and p.name.startswith(".")]
    assert all(p.name.endswith(".tmp") for p in stray)
    assert [e.rel for e in Project.open(root).images] == [f"sub/{i}.png" for i in range(3)]


@pytest.mark.slow
def test_segment_killed_mid_run_leaves_only_whole_files(tmp_path, tiny_models):
    clip, sam = tiny_models
    src = tmp_path / "in"
    src.mkdir()
    n = 200     # enough that no run ends within a kill's delay (a tiny-model image takes ~10 ms)
    for i in range(n):
        Image.fromarray(blob_image((96, 128), [(20 + i % 80, 30)], seed=i)).save(src / f"{i:03d}.png")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "zsas_gui.cli", "segment", str(src), "-o", str(out), "--clip", str(clip),
           "--sam", str(sam), "--device", "cpu"]

    def n_records() -> int:
        return len(list((out / "records").glob("*.json"))) if (out / "records").is_dir() else 0

    for delay in (0.2, 0.6):
        start = n_records()
        first_new = min(start + 1, n)
        mtimes = {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")} if start else {}

        def ready(start=start, first_new=first_new, mtimes=mtimes) -> bool:   # an image of this run is out
            if not start:
                return n_records() >= first_new
            return any(p.stat().st_mtime_ns != t for p, t in list(mtimes.items()) if p.exists())

        _kill_after(cmd, delay=delay, ready=ready)
        for p in out.rglob("*"):
            if p.is_file() and p.suffix == ".png":
                with Image.open(p) as im:
                    im.load()
            elif p.is_file() and p.suffix == ".json":
                json.loads(p.read_text())
        finished = list((out / "records").rglob("*.json"))
        assert 0 < len(finished) < n or start, "the kill did not land mid-run"
        for rec in finished:                          # a record is written last: its image is whole
            rel = rec.relative_to(out / "records").with_suffix("")
            for sub in ("masks", "heatmaps", "overlays"):
                assert (out / sub / f"{rel}.png").is_file()
    assert not (out / "summary.json").exists()        # never finished: the kills were mid-run


def test_old_temp_files_of_killed_saves_are_swept_when_the_project_opens(tmp_path):
    """A kill between creating and renaming a temp file leaves ``.NAME.xxxxxxxx.tmp``; opening
    the project deletes those older than an hour (a younger one may be another process's write
    in progress) and touches nothing else."""
    save_png(tmp_path / "a.png", blob_image((32, 32), [(10, 10)]))
    proj = Project.open(tmp_path)
    rec = proj.load("a.png")
    rec.mask = np.zeros((32, 32), bool)
    rec.mask[5:15, 5:15] = True
    proj.save(rec)
    records, masks = tmp_path / ".zsas" / "records", tmp_path / ".zsas" / "masks"
    stale = [records / ".a.png.json.k2x_9qz0.tmp", masks / ".a.png.0123456789abcdef.png.ab12cd34.tmp"]
    fresh = records / ".a.png.json.zz99yy88.tmp"
    lookalikes = [records / "notes.tmp", records / ".a.png.json.short.tmp"]
    old = time.time() - 2 * 3600
    for p in [*stale, fresh, *lookalikes]:
        p.write_bytes(b"half a save")
    for p in [*stale, *lookalikes]:
        os.utime(p, (old, old))
    kept = {p: p.read_bytes() for p in (tmp_path / ".zsas").rglob("*") if p.is_file() and p not in stale}

    reopened = Project.open(tmp_path)
    assert not any(p.exists() for p in stale)
    assert {p: p.read_bytes() for p in kept} == kept            # everything else byte-identical
    assert reopened.load("a.png").mask.sum() == 100
