"""Moving to a precomputed image in the real window: ``next_image_ms``.

    python benchmarks/bench_gui_next.py                    # tiny test models, 480x640 images
    python benchmarks/bench_gui_next.py --preset fast      # the fast preset's architectures
                                                           # (random weights), 1024x768 images

The MainWindow runs offscreen over a folder of ``--images`` synthetic images; "Precompute
folder" encodes them all (lane, lowest priority, disk cache in a temp folder). Then, for each
image after the first: ``next_image_ms`` = time from selecting the next image in the file list
(what PgDown does) to the GUI thread having shown its heatmap, points and mask (the document
holds the newest result and the window processed the events that draw it). Printed as
``name: value`` lines: median and max over the images, and the encoder calls made while
moving (0: every image came from the precompute).

The moves alternate between the app as it is (``next_image_ms``: the automatic result and the
decoded pixels the lane computed ahead are applied at once, qt/ahead.py) and the same window
with that switched off (``next_image_ms_no_ahead``: the GUI thread decodes the PNG and the lane
runs PPG + the cascade on the cached features, the figure this benchmark printed before),
interleaved in one run. ``cascades_while_moving`` counts the PPG/cascade runs for the image
moved to, between the selection and its display, in the first mode (0: nothing recomputed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _common import emit, preset_bundles


def make_folder(folder: Path, n: int, hw: tuple[int, int]) -> None:
    from zsas_gui.core.io.imageio import save_png

    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(90, 130, (*hw, 3), dtype=np.uint8)
        y, x = rng.integers(40, hw[0] - 40), rng.integers(40, hw[1] - 40)
        img[y - 25:y + 25, x - 30:x + 30] = 230
        save_png(folder / f"{i:03d}.png", img)


def build_pipeline(preset: str | None, work: Path):
    from zsas_gui.core.engine.cache import DiskCache
    from zsas_gui.core.engine.pipeline import Pipeline

    cache = DiskCache(work / "features")
    if preset is None:
        from zsas_gui.core.models.loading import load_clip, load_sam
        from zsas_gui.core.models.testmodels import make_test_models

        clip_dir, sam_dir = make_test_models(work / "models")
        return Pipeline(load_clip(str(clip_dir), device="cpu"), load_sam(str(sam_dir), device="cpu"),
                        disk_cache=cache), "tiny test models"
    from zsas_gui.core.engine.presets import get_preset

    p = get_preset(preset)
    clip, sam = preset_bundles(p)
    return Pipeline(clip, sam, disk_cache=cache), f"preset {p.name} ({p.clip_arg} + {p.sam}, random weights)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, help="time this preset's architectures (default: tiny models)")
    ap.add_argument("--images", type=int, default=15)
    ap.add_argument("--hw", type=int, nargs=2, default=None, metavar=("H", "W"))
    args = ap.parse_args(argv)
    hw = tuple(args.hw) if args.hw else ((768, 1024) if args.preset else (480, 640))
    for name, value in measure(args.preset, args.images, hw).items():
        emit(name, value)
    return 0


def measure(preset: str | None, images: int, hw: tuple[int, int]) -> dict[str, object]:
    """Run the window over a precomputed folder; the figures by name (see the module docstring)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from zsas_gui.qt.lane import InferenceLane
    from zsas_gui.qt.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="zsas-gui-next-") as tmp:
        work = Path(tmp)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
        make_folder(work / "images", images, hw)
        pipe, what = build_pipeline(preset, work)
        win = MainWindow(InferenceLane(pipe))
        win.resize(1400, 900)
        win.show()
        c = win.controller

        def pump(cond, limit_s: float) -> bool:
            deadline = time.monotonic() + limit_s
            while not cond():
                if time.monotonic() > deadline:
                    return False
                app.processEvents()
                time.sleep(0.0002)
            return True

        def shown(rel: str) -> bool:
            d = c.doc
            return (d is not None and d.image_id == rel and d.mask is not None and not d.needs_refine
                    and c.heatmap is not None)

        win.open_folder(work / "images")
        rels = win.file_list.ordered()
        pump(lambda: shown(rels[0]) and not win.lane.busy, 600)
        finished = []
        win.lane.precompute_finished.connect(lambda *a: finished.append(a))
        t0 = time.perf_counter()
        win.precompute.start()
        pump(lambda: bool(finished) and not win.lane.busy, 3600)
        precompute_s = time.perf_counter() - t0
        calls = dict(pipe.encoder_calls)
        ahead_on = [True]
        apply_ahead, ahead_image = c._apply_ahead, win.lane.ahead.image
        c._apply_ahead = lambda *a: ahead_on[0] and apply_ahead(*a)
        win.lane.ahead.image = lambda *a: ahead_image(*a) if ahead_on[0] else None
        cascades: list[str] = []                 # image keys of the cascades run (any thread)
        iter_refine = pipe.iter_refine
        pipe.iter_refine = lambda feats, *a, **k: (cascades.append(feats.image_key), iter_refine(feats, *a, **k))[1]
        times: dict[bool, list[float]] = {True: [], False: []}
        moved_cascades = 0
        for i, rel in enumerate(rels[1:]):
            ahead_on[0] = i % 2 == 0
            n0 = len(cascades)
            t0 = time.perf_counter()
            win.file_list.select(rel)            # what "Next image" (PgDown) does
            if not pump(lambda r=rel: shown(r), 60):
                raise SystemExit(f"{rel} was not shown within 60 s")
            app.processEvents()                  # the paint of the new layers
            times[ahead_on[0]].append((time.perf_counter() - t0) * 1e3)
            if ahead_on[0]:
                moved_cascades += cascades[n0:].count(c.image_key)
            pump(lambda: not win.lane.busy, 60)  # nothing else in flight before the next move
        figures = {"models": what, "image_hw": f"{hw[0]}x{hw[1]}",
                   "precompute_s_per_image": precompute_s / len(rels),
                   "moves_per_mode": len(times[True]),
                   "next_image_ms": statistics.median(times[True]),
                   "next_image_ms_max": max(times[True]),
                   "next_image_ms_no_ahead": statistics.median(times[False]),
                   "next_image_ms_no_ahead_max": max(times[False]),
                   "results_applied_ahead": c.ahead_hits,
                   "cascades_while_moving": moved_cascades,
                   "encoder_calls_while_moving": sum(pipe.encoder_calls.values()) - sum(calls.values())}
        win.close()
        app.processEvents()
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
