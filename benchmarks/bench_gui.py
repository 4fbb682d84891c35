"""How long is the GUI thread ever blocked? A heartbeat QTimer measures the longest gap between its
ticks while (1) the lane encodes an image with a full-size random-weight SAM vit_b, and (2) a user
drags a point continuously (mouse events at 60 Hz through the real canvas) while refinements run.

    python benchmarks/bench_gui.py                 # offscreen, tiny CLIP + full-size SAM vit_b
    python benchmarks/bench_gui.py --clip vit_b16  # full-size random CLIP ViT-B/16 @448 as well

Prints ``name: value`` lines, among them ``ui_max_stall_ms`` (aim < 50) and ``drag_refines_per_s``
(cascades completed per second of dragging: the point under the mouse is moved in the document
each time the previous refinement finishes, so each result is current and shown live). Random weights: timings are real, masks are meaningless.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from _common import emit, random_clip_bundle, random_sam_bundle, test_image

HEARTBEAT_MS = 5
MOVE_MS = 16


class Heartbeat:
    """A QTimer ticking every HEARTBEAT_MS; ``max_gap_ms`` is the longest time between ticks."""

    def __init__(self):
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self._tick)
        self.reset()
        self.timer.start()

    def reset(self) -> None:
        self.start = self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.max_gap_ms = self.max_gap_at_s = 0.0
        self.cpu_in_max_gap_ms = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        gap = (now - self.last) * 1e3
        if gap > self.max_gap_ms:
            # how much of the longest gap the GUI thread itself spent computing (the rest it
            # waited: for the CPU, held by other threads and processes, or for the GIL)
            self.max_gap_ms, self.cpu_in_max_gap_ms = gap, (cpu - self.last_cpu) * 1e3
            self.max_gap_at_s = self.last - self.start
        self.last, self.last_cpu = now, cpu
        self.ticks += 1

    @property
    def stall_ms(self) -> float:
        return max(0.0, self.max_gap_ms - HEARTBEAT_MS)


def _wait(app, cond, timeout_s: float) -> bool:
    """Run the event loop (not a busy loop) until ``cond()`` or the timeout."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(10)
    poll.timeout.connect(lambda: cond() and loop.quit())
    poll.start()
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    poll.stop()
    return bool(cond())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", choices=("tiny", "vit_b16"), default="tiny")
    p.add_argument("--seconds", type=float, default=5.0, help="drag duration")
    p.add_argument("--warmup-only", action="store_true",
                   help="stop after the model warm-up (ui_max_stall_ms_model_warmup only)")
    p.add_argument("--idle-seconds", type=float, default=5.0,
                   help="heartbeat with nothing to do after the warm-up (the machine's noise floor)")
    p.add_argument("--size", default="1024x768", help="test image WxH")
    p.add_argument("--switch-ms", type=float, default=None,
                   help="sys.setswitchinterval in ms (default: Python's 5 ms)")
    args = p.parse_args()
    if args.switch_ms is not None:
        sys.setswitchinterval(args.switch_ms / 1000)
    emit("gil_switch_interval_ms", sys.getswitchinterval() * 1000)

    from PySide6.QtCore import QEvent, QPointF, Qt, QTimer
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from zsas_gui.core.engine.pipeline import Pipeline
    from zsas_gui.core.io.imageio import save_png
    from zsas_gui.qt.lane import InferenceLane
    from zsas_gui.qt.main_window import MainWindow

    work = Path(tempfile.mkdtemp(prefix="zsas-bench-gui-"))
    w_px, h_px = (int(v) for v in args.size.split("x"))
    image, what = test_image((h_px, w_px))
    save_png(work / "images" / "a.png", image)
    t0 = time.perf_counter()
    if args.clip == "tiny":
        from zsas_gui.core.models.loading import load_clip
        from zsas_gui.core.models.testmodels import make_test_models

        clip = load_clip(str(make_test_models(work / "models")[0]), device="cpu")
    else:
        clip = random_clip_bundle("ViT-B-16-quickgelu", 448)
    sam = random_sam_bundle("vit_b")
    emit("models", f"{clip.model_id} + {sam.model_id} (random weights), built in "
                   f"{time.perf_counter() - t0:.1f} s")
    emit("image", what)
    import torch

    emit("torch_threads", torch.get_num_threads())
    emit("cpu_cores", os.cpu_count())
    emit("load_average_1min_at_start", os.getloadavg()[0])
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    pipe = Pipeline(clip, sam)
    hb = Heartbeat()
    window = MainWindow(InferenceLane(pipe))     # the lane warms the pipeline up (builds its decoder)
    window.resize(1400, 900)
    window.show()
    hb.reset()
    t0 = time.perf_counter()
    _wait(app, lambda: not window.lane.busy, 600)
    emit("model_warmup_s", time.perf_counter() - t0)
    backend = getattr(pipe, "decoder_backend", "torch")
    emit("sam_decoder", backend() if callable(backend) else backend)
    warmup_stall = hb.stall_ms
    emit("ui_max_stall_ms_model_warmup", warmup_stall)
    emit("gui_thread_cpu_ms_in_that_gap", hb.cpu_in_max_gap_ms)
    emit("that_gap_at_s_into_warmup", hb.max_gap_at_s)
    # the floor: the same heartbeat while the window and the lane are idle (what the machine's
    # other load alone costs the GUI thread on a shared computer)
    hb.reset()
    _wait(app, lambda: False, args.idle_seconds)
    emit(f"ui_max_stall_ms_idle_{args.idle_seconds:g}s", hb.stall_ms)
    if args.warmup_only:
        window.close()
        hb.timer.stop()
        return 0

    # phase 1: open the image; the lane encodes (CLIP + SAM vit_b), proposes and refines
    window.open_folder(work / "images")
    hb.reset()
    t0 = time.perf_counter()
    ok = _wait(app, lambda: window.controller.doc is not None and window.controller.doc.mask is not None
               and not window.lane.busy, 600)
    encode_s = time.perf_counter() - t0
    encode_stall = hb.stall_ms
    if not ok:
        print("timed out waiting for the first result", file=sys.stderr)
        return 1
    emit("encode_and_first_mask_s", encode_s)
    emit("ui_max_stall_ms_encoding", encode_stall)
    emit("gui_thread_cpu_ms_in_that_gap", hb.cpu_in_max_gap_ms)
    emit("heartbeat_ticks_encoding", hb.ticks)

    # phase 2: a point dragged in circles for args.seconds with mouse events at ~60 Hz
    c, canvas = window.controller, window.canvas
    c.add_point(w_px / 2, h_px / 2, True)
    _wait(app, lambda: not window.lane.busy and not c.doc.needs_refine, 120)
    vp = canvas.viewport()

    def send(kind, x, y):
        pos = QPointF(canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
        types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
                 "release": QEvent.Type.MouseButtonRelease}
        button = Qt.MouseButton.NoButton if kind == "move" else Qt.MouseButton.LeftButton
        held = Qt.MouseButton.NoButton if kind == "release" else Qt.MouseButton.LeftButton
        QApplication.sendEvent(vp, QMouseEvent(types[kind], pos, vp.mapToGlobal(pos), button, held,
                                               Qt.KeyboardModifier.NoModifier))

    cx, cy = c.doc.prompts.points[-1]
    radius = min(w_px, h_px) * 0.15
    refines0, dropped0, shown0, moves = window.lane.counters["refines"], c.dropped_results, c.shown_results, [0]
    send("press", cx, cy)
    gesture = (canvas._gesture or {}).get("kind")
    if gesture != "drag":
        print(f"the press at ({cx:.0f}, {cy:.0f}) did not grab the point (gesture {gesture!r})",
              file=sys.stderr)
        return 1
    start = time.perf_counter()

    def move():
        t = time.perf_counter() - start
        a = 2 * math.pi * t / 2.0
        send("move", cx + radius * math.sin(a), cy + radius * (1 - math.cos(a)) * 0.5)
        moves[0] += 1

    mover = QTimer()
    mover.setInterval(MOVE_MS)
    mover.timeout.connect(move)
    hb.reset()
    mover.start()
    _wait(app, lambda: time.perf_counter() - start >= args.seconds, args.seconds + 5)
    mover.stop()
    drag_s = time.perf_counter() - start
    drag_stall = hb.stall_ms
    refines = window.lane.counters["refines"] - refines0
    shown = c.shown_results - shown0
    x, y = c.doc.prompts.points[-1]
    send("release", x, y)
    _wait(app, lambda: not window.lane.busy and not c.doc.needs_refine, 120)
    emit("drag_seconds", drag_s)
    emit("drag_mouse_moves", moves[0])
    emit("ui_max_stall_ms_dragging", drag_stall)
    emit("gui_thread_cpu_ms_in_that_gap", hb.cpu_in_max_gap_ms)
    emit("drag_results_dropped_as_stale", c.dropped_results - dropped0)
    emit("drag_masks_shown_per_s", shown / drag_s)
    emit("drag_refines_per_s", refines / drag_s)
    emit("load_average_1min_at_end", os.getloadavg()[0])
    emit("ui_max_stall_ms", max(warmup_stall, encode_stall, drag_stall))
    window.close()
    hb.timer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
