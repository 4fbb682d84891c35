"""Long-session soak: resident memory over a 500-image `zsas label` batch, and an edit storm
through the inference lane (headless).

    python benchmarks/bench_soak.py [--images 500] [--hw 96 128] [--no-storm]
                                    [--storm-edits 200] [--storm-seconds 10]

Prints ``name: value`` lines:
- rss_mb_at_1 / rss_mb_at_50 / rss_mb_at_500: resident memory (VmRSS of this process, from
  /proc/self/status) right after image 1, 50 and N of the batch was saved. The batch is the real
  command, ``zsas_gui.cli.main(["label", FOLDER, ...])``, run in this process with a hook on
  ``Project.save``; tiny random-weight models (the plumbing, not the model sizes, is soaked),
  synthetic images in a temp folder.
- rss_growth_mb_50_to_N (N = --images), label_ms_per_image
- edit_storm_max_stall_ms: the longest the main (GUI) thread's event loop went without running
  while ``--storm-edits`` prompt edits were submitted to the lane in ``--storm-seconds`` s and
  its results delivered (a 2 ms heartbeat timer; stall = gap - 2 ms). Headless: the lane and a
  QCoreApplication, no window, so the cost of drawing results is not included.
- storm_results_applied / storm_results_dropped: results whose document revision was still the
  newest when they arrived (applied) or stale (dropped); storm_last_applied_is_newest: 1 when the
  final state is the newest edit's result.
- leaked_threads: lane threads still running after ``shutdown`` plus Python threads alive that
  were not there before the storm.
- window_edit_storm_max_stall_ms (section "GUI edit storm", owner: the app session): the same
  storm at the real MainWindow (offscreen, tiny models, a 480x640 image): ``--storm-edits``
  prompt edits (add / move / remove a point through the controller, each sent to the lane at
  once) in ``--storm-seconds`` s; the longest gap of a 2 ms heartbeat timer on the GUI thread
  minus 2 ms, so drawing the results (mask, outline, points) is included.
  window_storm_newest_applied: 1 when the mask shown at the end equals a fresh pipeline's refine
  of the final points; window_leaked_threads: tracked QThreads still running plus Python threads
  more than before, after the window closed; window_storm_results_shown/_dropped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _common import emit


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status (not Linux?)")


def make_images(folder: Path, n: int, hw: tuple[int, int]) -> None:
    from zsas_gui.core.io.imageio import save_png

    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(90, 120, (*hw, 3), dtype=np.uint8)
        y, x = rng.integers(8, hw[0] - 8), rng.integers(8, hw[1] - 8)
        img[max(0, y - 6):y + 6, max(0, x - 6):x + 6] = 235
        save_png(folder / f"{i // 100:02d}" / f"{i:04d}.png", img)


def soak_label(models: tuple[Path, Path], n: int, hw: tuple[int, int], work: Path) -> dict[str, float]:
    from zsas_gui.cli import main
    from zsas_gui.state.project import Project

    folder = work / "images"
    make_images(folder, n, hw)
    samples: dict[int, float] = {}
    real_save = Project.save

    def save(self, rec):
        real_save(self, rec)
        samples[len(samples) + 1] = rss_mb()

    Project.save = save
    t0 = time.perf_counter()
    try:
        rc = main(["label", str(folder), "--clip", str(models[0]), "--sam", str(models[1]), "--device", "cpu"])
    finally:
        Project.save = real_save
    seconds = time.perf_counter() - t0
    if rc != 0 or len(samples) != n:
        raise SystemExit(f"zsas label failed: rc {rc}, {len(samples)} of {n} images saved")
    return {"rss_mb_at_1": samples[1], "rss_mb_at_50": samples[min(50, n)], f"rss_mb_at_{n}": samples[n],
            f"rss_growth_mb_50_to_{n}": samples[n] - samples[min(50, n)],
            "label_ms_per_image": seconds * 1e3 / n}


def storm(models: tuple[Path, Path], edits: int, seconds: float) -> dict[str, float]:
    """Submit ``edits`` prompt edits to the lane over ``seconds`` s from the main thread."""
    import threading

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QElapsedTimer, QTimer

    from zsas_gui.core.engine.pipeline import Pipeline
    from zsas_gui.core.models.loading import load_clip, load_sam
    from zsas_gui.core.types import MethodParams, Prompts, TextPrompts
    from zsas_gui.qt.lane import InferenceLane
    from zsas_gui.qt.lane_jobs import Request
    from zsas_gui.qt.threads import running_threads

    app = QCoreApplication.instance() or QCoreApplication([])
    threads_before = {t.ident for t in threading.enumerate()}
    pipe = Pipeline(load_clip(str(models[0]), device="cpu"), load_sam(str(models[1]), device="cpu"))
    image = np.random.default_rng(1).integers(90, 120, (480, 640, 3), dtype=np.uint8)
    image[200:260, 300:380] = 230
    lane = InferenceLane(pipe)
    params, text = MethodParams(), TextPrompts()
    state = {"revision": 0, "applied": 0, "dropped": 0, "last_applied": -1, "max_gap": 0.0}
    rng = np.random.default_rng(2)

    def on_result(req, _result) -> None:
        if req.revision == state["revision"]:
            state["applied"] += 1
            state["last_applied"] = req.revision
        else:
            state["dropped"] += 1

    lane.result_ready.connect(on_result)
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def beat() -> None:
        now = clock.elapsed()
        state["max_gap"] = max(state["max_gap"], now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(2)
    heartbeat.timeout.connect(beat)

    def edit() -> None:
        if state["revision"] >= edits:
            editor.stop()
            return
        state["revision"] += 1
        n = int(rng.integers(1, 6))
        pts = np.column_stack([rng.uniform(0, 640, n), rng.uniform(0, 480, n)]).astype(np.float32)
        labels = (rng.random(n) < 0.7).astype(np.int32)
        labels[0] = 1
        lane.submit(Request.make("refine", "img", state["revision"], "soak-img", image, params, text,
                                 Prompts(pts, labels)))

    editor = QTimer()
    editor.setInterval(max(1, int(seconds * 1000 / edits)))
    editor.timeout.connect(edit)
    lane.submit(Request.make("features", "img", 0, "soak-img", image, params, text))   # warm the cache
    deadline = time.monotonic() + 60
    while lane.busy and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    last[0] = clock.elapsed()
    heartbeat.start()
    editor.start()
    deadline = time.monotonic() + seconds + 60
    while (editor.isActive() or lane.busy) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.0005)
    for _ in range(20):                      # deliver the last queued results
        app.processEvents()
        time.sleep(0.005)
    heartbeat.stop()
    ok = lane.shutdown()
    app.processEvents()
    leaked = len(running_threads()) + len([t for t in threading.enumerate()
                                           if t.ident not in threads_before and t.is_alive()])
    return {"edit_storm_max_stall_ms": max(0.0, state["max_gap"] - 2.0), "storm_edits": state["revision"],
            "storm_results_applied": state["applied"], "storm_results_dropped": state["dropped"],
            "storm_last_applied_is_newest": int(state["last_applied"] == state["revision"]),
            "leaked_threads": leaked + (0 if ok else 1)}


# -- GUI edit storm (the app session's section) --------------------------------------------------------
def window_storm(models: tuple[Path, Path], edits: int, seconds: float, work: Path) -> dict[str, float]:
    """``edits`` prompt edits over ``seconds`` s at the real window (offscreen), from the GUI thread."""
    import threading

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from zsas_gui.core.engine.pipeline import Pipeline
    from zsas_gui.core.io.imageio import save_png
    from zsas_gui.core.models.loading import load_clip, load_sam
    from zsas_gui.qt.lane import InferenceLane
    from zsas_gui.qt.main_window import MainWindow
    from zsas_gui.qt.threads import running_threads

    app = QApplication.instance() or QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    image = np.random.default_rng(1).integers(90, 120, (480, 640, 3), dtype=np.uint8)
    image[200:260, 300:380] = 230
    save_png(work / "storm" / "part.png", image)
    threads_before = threading.active_count()
    clip, sam = load_clip(str(models[0]), device="cpu"), load_sam(str(models[1]), device="cpu")
    win = MainWindow(InferenceLane(Pipeline(clip, sam)))
    win.controller.models_state = "ready"
    win.resize(1200, 800)
    win.show()
    win.open_folder(work / "storm")
    c = win.controller

    def pump(cond, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while not cond() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.0005)

    pump(lambda: c.doc is not None and c.doc.mask is not None and not win.lane.busy, 60)
    rng = np.random.default_rng(2)
    clock = QElapsedTimer()
    clock.start()
    st = {"gap": 0, "last": clock.elapsed(), "sent": 0}

    def beat() -> None:
        now = clock.elapsed()
        st["gap"], st["last"] = max(st["gap"], now - st["last"]), now

    def edit() -> None:
        if st["sent"] >= edits:
            editor.stop()
            return
        st["sent"] += 1
        n, r = len(c.doc.prompts), rng.random()
        if n >= 8 or (n > 1 and r < 0.2):
            c.remove_point(int(rng.integers(n)))
        elif n and r < 0.6:
            i = int(rng.integers(n))
            c.move_point(i, float(rng.uniform(0, 639)), float(rng.uniform(0, 479)))
            c.end_drag(i)
        else:
            c.add_point(float(rng.uniform(0, 639)), float(rng.uniform(0, 479)), bool(rng.random() < 0.7))
        c.submit_now()

    heartbeat, editor = QTimer(interval=2), QTimer(interval=max(1, int(seconds * 1000 / edits)))
    heartbeat.timeout.connect(beat)
    editor.timeout.connect(edit)
    shown0, dropped0 = c.shown_results, c.dropped_results
    st["last"] = clock.elapsed()
    heartbeat.start()
    editor.start()
    pump(lambda: st["sent"] >= edits and not win.lane.busy and not c.doc.needs_refine, seconds + 60)
    pump(lambda: False, 0.05)                 # the last queued signals
    heartbeat.stop()
    fresh = Pipeline(clip, sam)
    feats = fresh.features(c.image_key, c.image, c.doc.state.text_prompts)
    expected = fresh.refine(feats, c.doc.prompts, c.doc.state.params).pred_mask
    newest = int(c.doc.mask is not None and bool(np.array_equal(c.doc.mask, expected)) and not c.doc.needs_refine)
    out = {"window_edit_storm_max_stall_ms": max(0.0, st["gap"] - 2.0), "window_storm_edits": st["sent"],
           "window_storm_results_shown": c.shown_results - shown0,
           "window_storm_results_dropped": c.dropped_results - dropped0, "window_storm_newest_applied": newest}
    win.close()
    pump(lambda: not running_threads() and threading.active_count() <= threads_before, 10)
    out["window_leaked_threads"] = len(running_threads()) + max(0, threading.active_count() - threads_before)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--hw", type=int, nargs=2, default=(96, 128), metavar=("H", "W"))
    ap.add_argument("--no-storm", action="store_true", help="skip the lane edit storm (no Qt needed)")
    ap.add_argument("--storm-edits", type=int, default=200)
    ap.add_argument("--storm-seconds", type=float, default=10.0)
    ap.add_argument("--no-window-storm", action="store_true", help="skip the edit storm at the real window")
    args = ap.parse_args()
    if args.images < 50:
        raise SystemExit("--images must be at least 50")

    from zsas_gui.core.models.testmodels import make_test_models

    with tempfile.TemporaryDirectory(prefix="zsas-soak-") as tmp:
        work = Path(tmp)
        models = make_test_models(work / "models")
        emit("images", args.images)
        emit("image_hw", f"{args.hw[0]}x{args.hw[1]}")
        for name, value in soak_label(models, args.images, tuple(args.hw), work).items():
            emit(name, value)
        if not args.no_window_storm:      # first: it needs a QApplication, the lane storm a QCoreApplication
            for name, value in window_storm(models, args.storm_edits, args.storm_seconds, work).items():
                emit(name, value)
        if not args.no_storm:
            for name, value in storm(models, args.storm_edits, args.storm_seconds).items():
                emit(name, value)


if __name__ == "__main__":
    main()
