"""Start the real app under Xvfb on ../shared/data/demo with tiny test models and save a screenshot.

    python tools/screenshot.py [--out resources/screenshots/main.png] [--image carpet.png]

Re-runs itself under ``xvfb-run`` when no display is set (Debian: xvfb, libxcb-icccm4,
libxcb-keysyms1, libxcb-cursor0). The demo folder is copied to a temporary folder first (the app
writes its sidecar ``.zsas/`` next to the images; the shared data stays untouched). The models
are tiny RANDOM-weight test models: the heatmap and mask show the plumbing, not real results.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT.parent / "shared" / "data" / "demo"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default=str(DEMO), help="folder of images to open (copied first)")
    p.add_argument("--image", default="carpet.png", help="image to show")
    p.add_argument("--out", default=str(ROOT / "resources" / "screenshots" / "main.png"))
    p.add_argument("--size", default="1600x1000", help="window size WxH")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the result")
    return p.parse_args()


def main() -> int:
    args = parse()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        if shutil.which("xvfb-run") is None:
            print("no display and no xvfb-run: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 "
                  "libxcb-cursor0", file=sys.stderr)
            return 2
        w, h = (int(v) for v in args.size.split("x"))
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {w + 80}x{h + 80}x24", sys.executable, *sys.argv]
        return subprocess.call(cmd)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    return shoot(args)


def shoot(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from zsas_gui.app import build_parser, launch
    from zsas_gui.core.models.testmodels import make_test_models

    work = Path(tempfile.mkdtemp(prefix="zsas-shot-"))
    try:
        folder = work / "demo"
        shutil.copytree(args.demo, folder, ignore=shutil.ignore_patterns(".zsas"))
        clip_dir, sam_dir = make_test_models(work / "models")
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
        app = QApplication.instance() or QApplication([sys.argv[0]])
        app.setApplicationName("zsas-gui")
        window = launch(build_parser().parse_args(
            [str(folder), "--clip", str(clip_dir), "--sam", str(sam_dir), "--device", "cpu"]))
        w, h = (int(v) for v in args.size.split("x"))
        window.resize(w, h)
        window.move(20, 20)
        ctrl = window.controller
        window.file_list.select(args.image)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            app.processEvents()
            doc = ctrl.doc
            if (doc is not None and doc.image_id == args.image and doc.mask is not None
                    and ctrl.heatmap is not None and not window.lane.busy):
                break
            time.sleep(0.02)
        else:
            print("timed out waiting for the first result", file=sys.stderr)
            return 1
        # a hand-placed negative point next to the automatic ones, as a user would add
        h_img, w_img = doc.hw
        ctrl.add_point(w_img * 0.15, h_img * 0.2, False)
        ctrl.submit_now()
        quiet_since = None   # wait for the lane to stay idle (the next images are encoded ahead)
        while time.monotonic() < deadline:
            app.processEvents()
            busy = window.lane.busy or doc.needs_refine
            quiet_since = None if busy else (quiet_since or time.monotonic())
            if quiet_since is not None and time.monotonic() - quiet_since > 1.0:
                break
            time.sleep(0.02)
        window.canvas.fit()
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)
        pixmap = window.screen().grabWindow(window.winId())
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not pixmap.save(str(out)):
            print(f"could not write {out}", file=sys.stderr)
            return 1
        print(f"saved {out} ({pixmap.width()}x{pixmap.height()})")
        window.close()
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
