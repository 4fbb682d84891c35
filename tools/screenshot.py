"""Start the real app under Xvfb on ../shared/data/demo with tiny test models and save screenshots:

- ``main.png``: the main window with a result, the review progress ("2 / 3 reviewed …") and the
  File menu open on Export…;
- ``export.png``: File → Export… after an MVTec export of the reviewed images;
- ``map_source.png``: the "heatmap from" selector over a copy of part of
  ``../shared/data/magnetic_tile`` (4 test images, 2 good ones) with the map of "this folder"
  in use on the backbone chosen below it (a timm efficientnet_lite0 with ``--lite0-weights
  FILE``, else the CLIP tower), τ on the folder scale, and the method panel naming the map.

    python tools/screenshot.py [--out-dir resources/screenshots] [--image carpet.png]
        [--lite0-weights FILE]   # benchmarks/efficientnet_lite0_weights.py FILE makes it

Re-runs itself under ``xvfb-run`` when no display is set (Debian: xvfb, libxcb-icccm4,
libxcb-keysyms1, libxcb-cursor0). The demo folder is copied to a temporary folder first (the app
writes its sidecar ``.zsas/`` next to the images; the shared data stays untouched). The models
are tiny RANDOM-weight test models: the heatmap and mask show the plumbing, not real results.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_session import ROOT, SHARED, ensure_display, grab, pump, settle, start_app, wait_until


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default=str(SHARED / "demo"), help="folder of images to open (copied first)")
    p.add_argument("--image", default="carpet.png", help="image to show")
    p.add_argument("--out-dir", default=str(ROOT / "resources" / "screenshots"))
    p.add_argument("--size", default="1600x1000", help="window size WxH")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each result")
    p.add_argument("--tiles", default=str(SHARED / "magnetic_tile"), help="MVTec-layout folder for map_source.png")
    p.add_argument("--lite0-weights", default=None, metavar="FILE",
                   help="timm efficientnet_lite0 state dict: map_source.png shows the map on it")
    return p.parse_args()


def main() -> int:
    args = parse()
    status = ensure_display(args.size)
    return shoot(args) if status is None else status


def shoot(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QPoint

    from zsas_gui.qt.export_dialog import ExportDialog

    work = Path(tempfile.mkdtemp(prefix="zsas-shot-"))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        folder = work / "demo"
        shutil.copytree(args.demo, folder, ignore=shutil.ignore_patterns(".zsas"))
        app, window = start_app(folder, work, args.size)
        ctrl = window.controller
        window.actions["auto_advance"].setChecked(False)        # stay on the images reviewed here
        for rel, action in (("candle.jpg", "mark_good"), ("capsule.jpg", "accept"), (args.image, None)):
            window.file_list.select(rel)
            wait_until(app, lambda r=rel: ctrl.doc is not None and ctrl.doc.image_id == r and ctrl.doc.mask is not None
                       and ctrl.heatmap is not None and not window.lane.busy, args.timeout, f"the result of {rel}")
            if action:
                window.actions[action].trigger()
        doc = ctrl.doc
        h_img, w_img = doc.hw                  # a hand-placed negative point, as a user would add
        ctrl.add_point(w_img * 0.15, h_img * 0.2, False)
        ctrl.submit_now()
        settle(app, window, args.timeout)
        window.canvas.fit()
        pump(app)
        file_menu = window.menuBar().actions()[0].menu()
        file_menu.popup(window.menuBar().mapToGlobal(QPoint(0, window.menuBar().height())))
        file_menu.setActiveAction(window.actions["export"])
        pump(app)
        _save(grab(window), out_dir / "main.png")
        file_menu.hide()
        window.actions["export"].trigger()
        dlg = window.findChild(ExportDialog, "export_dialog")
        dlg.format.setCurrentIndex(dlg.format.findData("mvtec"))
        dlg.out.setText(str(work / "demo_mvtec"))
        dlg.start()
        wait_until(app, lambda: not dlg.running() and (dlg.report is not None or dlg.problems.isVisible()),
                   args.timeout, "the export")
        pump(app)
        _save(grab(window, dlg), out_dir / "export.png")
        dlg.close()
        window.close()
        shoot_map_source(args, work, out_dir)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def shoot_map_source(args: argparse.Namespace, work: Path, out_dir: Path) -> None:
    """``map_source.png``: "heatmap from: this folder" built by the folder pass, the selector open."""
    from record_review import copy_subset

    folder = work / "magnetic_tile"
    copy_subset(Path(args.tiles), folder)
    app, window = start_app(folder, work / "tiles", args.size)
    ctrl, fm = window.controller, window.folder_map
    window.actions["toggle_method"].setChecked(True)
    rel = "test/crack/000.png"
    window.file_list.select(rel)
    form = fm.box.options
    form.tau_mode.setCurrentIndex(form.tau_mode.findData("absolute"))
    if args.lite0_weights:
        form.arch.setText("efficientnet_lite0")
        form.weights.setText(str(Path(args.lite0_weights).resolve()))
        form.backbone.setCurrentIndex(form.backbone.findData("timm"))
    fm.box.combo.setCurrentIndex(fm.box.combo.findData("mutual"))
    backbone = "timm:efficientnet_lite0" if args.lite0_weights else "clip:"
    wait_until(app, lambda: fm.job is None and fm.info is not None and ctrl.doc is not None
               and fm.info["backbone"].startswith(backbone) and ctrl.doc.image_id == rel
               and "this folder" in window.method_panel.source.text()
               and not ctrl.doc.needs_refine, args.timeout, "the folder map and its result")
    settle(app, window, args.timeout)
    window.canvas.fit()
    pump(app)
    _save(grab(window), out_dir / "map_source.png")
    window.close()


def _save(pixmap, out: Path) -> None:
    if not pixmap.save(str(out)):
        raise RuntimeError(f"could not write {out}")
    print(f"saved {out} ({pixmap.width()}x{pixmap.height()})")


if __name__ == "__main__":
    sys.exit(main())
