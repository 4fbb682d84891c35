"""The headless command line: ``zsas segment|label|export|eval|explain|models ...``.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int`` (the exit status). Modules import torch/cv2 only inside ``func``, so
``zsas --help`` stays light (no torch, no Qt).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..core.errors import ZsasError

#: Subcommand modules, in the order ``zsas --help`` lists them.
SUBCOMMANDS = ("segment", "label", "export", "eval", "explain", "models")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zsas",
        description="Zero-shot industrial anomaly segmentation: CLIP heatmap -> point prompts -> "
                    "cascaded SAM refinement.")
    parser.add_argument("--version", action="version", version=f"zsas {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}_cmd":
                raise
            continue  # subcommand not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):   # a file name that is not UTF-8 prints as \xe9, never raises
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from .common import apply_default_preset

        apply_default_preset(args)       # models not named: the preset's, else auto's
        return int(args.func(args) or 0)
    except ZsasError as exc:
        if args.verbose:
            raise
        print(f"zsas: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zsas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
