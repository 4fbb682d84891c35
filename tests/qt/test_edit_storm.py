"""An edit storm at the real window (tiny models): 200 prompt edits, each sent to the lane at once
(no debounce), leave only the newest revision's result applied, leak no thread, and never block
the GUI thread long.

The GUI-thread bound asserted here is 250 ms, not the promised 50 ms: this test shares 2 CPU cores
with other test runs, where the OS alone can hold a process off the CPU for 100 ms and more. The
50 ms promise is measured by ``benchmarks/bench_soak.py`` (``window_edit_storm_max_stall_ms``,
200 edits in 10 s; docs/benchmarks.md, Soak)."""

import threading

import numpy as np
from PySide6.QtCore import QElapsedTimer, QThreadPool, QTimer

from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.qt.threads import running_threads

EDITS = 200
STORM_MS = 2500
STALL_BOUND_MS = 250


def storm_edit(c, rng, w, h) -> None:
    """One prompt edit through the controller (add, move or remove a point), sent at once."""
    n = len(c.doc.prompts)
    r = rng.random()
    if n >= 8 or (n > 1 and r < 0.2):
        c.remove_point(int(rng.integers(n)))
    elif n and r < 0.6:
        i = int(rng.integers(n))
        c.move_point(i, float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1)))
        c.end_drag(i)
    else:
        c.add_point(float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1)), bool(rng.random() < 0.7))
    c.submit_now()


def test_an_edit_storm_applies_only_the_newest_result(make_window, image_folder, tiny_bundles, qtbot,
                                                      wait_idle):
    threads_before = threading.active_count()
    pool_before = QThreadPool.globalInstance().activeThreadCount()
    clip, sam = tiny_bundles
    w = make_window(Pipeline(clip, sam), image_folder)
    c = w.controller
    qtbot.waitUntil(lambda: c.doc is not None and c.doc.mask is not None, timeout=300_000)
    wait_idle(w)
    h, wd = c.doc.hw
    rng = np.random.default_rng(7)
    clock = QElapsedTimer()
    clock.start()
    gaps, last, sent = [0], [clock.elapsed()], [0]

    def beat():
        now = clock.elapsed()
        gaps[0] = max(gaps[0], now - last[0])
        last[0] = now

    def edit():
        if sent[0] >= EDITS:
            editor.stop()
            return
        sent[0] += 1
        storm_edit(c, rng, wd, h)

    heartbeat = QTimer(interval=5)
    heartbeat.timeout.connect(beat)
    editor = QTimer(interval=STORM_MS // EDITS)
    editor.timeout.connect(edit)
    results_before = c.shown_results + c.dropped_results
    heartbeat.start()
    editor.start()
    qtbot.waitUntil(lambda: sent[0] >= EDITS, timeout=STORM_MS + 20000)
    qtbot.waitUntil(lambda: not w.lane.busy and not c.doc.needs_refine, timeout=300_000)
    qtbot.wait(50)
    heartbeat.stop()
    doc = c.doc
    assert not doc.needs_refine and doc.mask is not None
    assert c.shown_results + c.dropped_results > results_before           # results came back meanwhile
    # the shown mask is the newest revision's: a fresh pipeline refining the final points agrees
    fresh = Pipeline(clip, sam)
    feats = fresh.features(c.image_key, c.image, doc.state.text_prompts)
    expected = fresh.refine(feats, doc.prompts, doc.state.params)
    np.testing.assert_array_equal(doc.mask, expected.pred_mask)
    assert w.canvas._mask is doc.mask                                       # and it is the one drawn
    stall = gaps[0] - 5
    assert stall < STALL_BOUND_MS, f"the GUI thread was blocked {stall} ms"
    w.close()
    qtbot.wait(50)
    assert running_threads() == []
    qtbot.waitUntil(lambda: threading.active_count() <= threads_before, timeout=300_000)
    assert QThreadPool.globalInstance().activeThreadCount() <= pool_before
