"""A frame sequence of the inspector's day, recorded from the real app under Xvfb: open a folder →
review five images with the keys (A accept, X reject, G good; auto-advance opens the next
unreviewed image) → File → Export… as MVTec. Saved as an animated GIF with a caption per step.

    python tools/record_review.py [--out resources/review_session.gif]

Images: a copy of part of ../shared/data/magnetic_tile (MVTec layout: crack, blowhole, good). The
models are tiny RANDOM-weight test models: the masks show the plumbing, not real results.
Needs what tools/screenshot.py needs (xvfb-run re-run when there is no display).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_session import ROOT, SHARED, ensure_display, grab, pump, settle, start_app, wait_until

#: (split/class, file stems) copied from magnetic_tile, with their ground truth
SUBSET = (("test/crack", ("000", "001")), ("test/blowhole", ("000", "001")), ("train/good", ("000", "001")))
#: the five review keys, in order, with the caption of the frame after each
REVIEW = (("A", "A: accept the proposed mask; the next unreviewed image opens"),
          ("A", "A: accept"),
          ("X", "X: reject (the proposal is wrong)"),
          ("G", "G: the image is good (no defect)"),
          ("G", "G: good"))


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED / "magnetic_tile"))
    p.add_argument("--out", default=str(ROOT / "resources" / "review_session.gif"))
    p.add_argument("--size", default="1280x800", help="window size WxH")
    p.add_argument("--width", type=int, default=720, help="frame width in the GIF")
    p.add_argument("--timeout", type=float, default=300.0)
    return p.parse_args()


def main() -> int:
    args = parse()
    status = ensure_display(args.size)
    return record(args) if status is None else status


def copy_subset(src: Path, dest: Path) -> None:
    for folder, stems in SUBSET:
        for stem in stems:
            img = src / folder / f"{stem}.png"
            (dest / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(img, dest / folder / img.name)
            cls = folder.split("/")[-1]
            mask = src / "ground_truth" / cls / f"{stem}_mask.png"
            if folder.startswith("test/") and mask.is_file():
                (dest / "ground_truth" / cls).mkdir(parents=True, exist_ok=True)
                shutil.copy2(mask, dest / "ground_truth" / cls / mask.name)


def record(args: argparse.Namespace) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from zsas_gui.qt.export_dialog import ExportDialog

    work = Path(tempfile.mkdtemp(prefix="zsas-rec-"))
    frames: list[tuple[object, str]] = []
    try:
        folder = work / "magnetic_tile"
        copy_subset(Path(args.data), folder)
        app, window = start_app(folder, work, args.size)
        ctrl = window.controller

        def ready() -> bool:
            doc = ctrl.doc
            return doc is not None and doc.mask is not None and ctrl.heatmap is not None and not window.lane.busy

        wait_until(app, ready, args.timeout, "the first result")
        settle(app, window, args.timeout)
        frames.append((grab(window), "zsas-gui magnetic_tile: the folder opens at its first image"))
        from PySide6.QtWidgets import QApplication

        window.activateWindow()
        wait_until(app, lambda: QApplication.activeWindow() is window, args.timeout, "the window to be active")
        for key, caption in REVIEW:
            window.canvas.setFocus()
            QTest.keyClick(window.canvas, getattr(Qt.Key, f"Key_{key}"))
            wait_until(app, ready, args.timeout, f"the result after {key}")
            settle(app, window, args.timeout, quiet_s=0.3)
            frames.append((grab(window), caption))
        QTest.keyClick(window.canvas, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
        dlg = window.findChild(ExportDialog, "export_dialog")
        dlg.format.setCurrentIndex(dlg.format.findData("mvtec"))
        dlg.out.setText(str(work / "magnetic_tile_mvtec"))
        pump(app)
        frames.append((grab(window), "Ctrl+E: File → Export… as MVTec AD (accepted, edited, good)"))
        dlg.start()
        wait_until(app, lambda: not dlg.running() and (dlg.report is not None or dlg.problems.isVisible()),
                   args.timeout, "the export")
        pump(app)
        frames.append((grab(window), "exported: validated first, written all at once; Open folder"))
        dlg.close()
        window.close()
        save_gif([(pixmap_to_pil(p), c) for p, c in frames], Path(args.out), args.width)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pixmap_to_pil(pixmap):
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    pixmap.save(buf, "PNG")
    import io

    return Image.open(io.BytesIO(bytes(buf.data()))).convert("RGB")


def save_gif(frames, out: Path, width: int) -> None:
    """Frames scaled to ``width`` with a caption band, one palette per frame, 2.2 s each."""
    from PIL import Image, ImageDraw

    images = []
    for n, (img, caption) in enumerate(frames, 1):
        h = round(img.height * width / img.width)
        small = img.resize((width, h), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (width, h + 26), (20, 20, 20))
        canvas.paste(small, (0, 0))
        ImageDraw.Draw(canvas).text((8, h + 7), f"{n}/{len(frames)}  {caption}", fill=(255, 255, 255))
        images.append(canvas.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    out.parent.mkdir(parents=True, exist_ok=True)
    durations = [2200] * (len(images) - 1) + [4000]
    images[0].save(out, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=True)
    print(f"saved {out} ({len(images)} frames, {out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    sys.exit(main())
