"""``zsas-gui [FOLDER] [--clip ..] [--sam ..] [--device ..]``: the desktop app."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zsas-gui", description="Review and edit zero-shot anomaly masks: "
                                "CLIP heatmap -> point prompts -> cascaded SAM.")
    p.add_argument("folder", nargs="?", help="a folder of images to open (default: the last one opened, "
                                              "at the image shown last)")
    p.add_argument("--clip", default=None, metavar="NAME|PATH", help="CLIP model: registry name or path")
    p.add_argument("--sam", default=None, metavar="NAME|PATH", help="SAM model: registry name or path")
    p.add_argument("--device", default=None, help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", default=None, choices=("auto", "fp32", "fp16"))
    p.add_argument("--version", action="version", version=f"zsas-gui {__version__}")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def choose_models(args, settings) -> tuple[str | None, str | None, str, str, str | None]:
    """(clip, sam, device, precision, problem): command line first, then the saved choice, then
    the models recommended for this computer (the ``auto`` preset). ``problem`` is the message
    when a model cannot be found (no loading here)."""
    from .core.engine.presets import recommended_preset
    from .core.errors import ModelNotFoundError
    from .core.models.loading import split_clip_size
    from .core.models.registry import resolve_checkpoint

    clip = args.clip or (settings.value("models/clip") or None)
    sam = args.sam or (settings.value("models/sam") or None)
    device = args.device or settings.value("models/device") or "auto"
    precision = args.precision or settings.value("models/precision") or "auto"
    if not clip or not sam:
        preset = recommended_preset(str(device))
        clip, sam = clip or preset.clip_arg, sam or preset.sam
    problems = []
    for kind, name in (("clip", clip), ("sam", sam)):
        try:
            resolve_checkpoint(split_clip_size(name)[0], kind)        # NAME@SIZE: the size aside
        except ModelNotFoundError as exc:
            problems.append(str(exc))
    return clip, sam, str(device), str(precision), "\n\n".join(problems) or None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("zsas-gui")
    app.setOrganizationName("zsas-gui")
    app.setApplicationVersion(__version__)
    window = launch(args)  # noqa: F841 - kept alive while the app runs
    return int(app.exec())


def launch(args: argparse.Namespace):
    """Create and show the main window for parsed ``args`` (a QApplication must exist): open the
    folder, then load the models in the background, or explain how to get them."""
    from .qt.main_window import MainWindow, app_settings  # icons need the QApplication first

    window = MainWindow()
    window.show()
    if args.folder:
        window.open_folder(args.folder)
    else:
        from .qt.recent import reopen_last

        reopen_last(window)            # start where the user left off: last folder, last image
    clip, sam, device, precision, problem = choose_models(args, app_settings())
    if problem is None:
        window.load_models(clip, sam, device, precision)
    else:
        window.controller.models.missing()
        window.show_no_models(problem)
    return window
