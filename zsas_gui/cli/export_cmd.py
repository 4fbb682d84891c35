"""``zsas export FOLDER --format F -o OUT``: reviewed annotations as a dataset other tools read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..vocabulary import DEFAULT_INCLUDE, FORMATS, STATUSES

#: Exports tried when records change while one reads them (a concurrent save replaced a mask).
RACE_ATTEMPTS = 3


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="export a project's annotations (MVTec, anomalib Folder, COCO, labelme, YOLO, PNG)",
        description="Write the annotations stored in FOLDER/.zsas as a dataset. Everything is "
                    "validated first (one mask per defect image, sizes, names, 0/255 values); "
                    "nothing is written when a check fails. The export is built next to OUT and "
                    "moved into place only when complete. Layouts: docs/labels.md.",
        epilog="Exit status: 0 exported, 1 nothing written (the message lists every problem).")
    p.add_argument("folder", type=Path, metavar="FOLDER", help="the project folder (images + .zsas/)")
    p.add_argument("--format", "-f", required=True, choices=FORMATS, help="output layout")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder (new or empty)")
    p.add_argument("--include", default=",".join(DEFAULT_INCLUDE), metavar="STATUSES",
                   help=f"comma-separated statuses to export, from {', '.join(STATUSES)} "
                        f"(default: {','.join(DEFAULT_INCLUDE)})")
    p.add_argument("--category", default=None,
                   help="dataset/category name for mvtec and folder (default: the folder's name)")
    p.add_argument("--polygons", action="store_true",
                   help="coco/labelme: polygons instead of RLE/mask shapes (holes are lost)")
    p.add_argument("--good-test-fraction", type=float, default=0.0, metavar="F",
                   help="mvtec: share of good images put in test/good instead of train/good (default 0)")
    p.add_argument("--good-from", type=Path, default=None, metavar="DIR",
                   help="add every image under DIR as a good (defect-free) image")
    p.add_argument("--test-only", action="store_true",
                   help="mvtec: allow an export without good images (anomalib can only test on it, "
                        "not train; its datamodule.yaml says so)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous zsas export in OUT")
    p.set_defaults(func=run)


def parse_include(text: str) -> tuple[str, ...]:
    from ..core.errors import ZsasError

    statuses = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in statuses if s not in STATUSES]
    if bad or not statuses:
        raise ZsasError(f"--include: unknown status {', '.join(bad) or '(none given)'}; "
                        f"choose from {', '.join(STATUSES)}")
    return statuses


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ZsasError
    from ..core.export import ExportValidationError
    from ..state.project import Project
    from ..state.project_export import export_project

    include = parse_include(args.include)
    if not 0.0 <= args.good_test_fraction <= 1.0:
        raise ZsasError(f"--good-test-fraction must be in [0, 1], got {args.good_test_fraction}")
    for attempt in range(1, RACE_ATTEMPTS + 1):   # another writer (zsas label, the app) may save meanwhile
        proj = Project.open(args.folder, create=False)
        try:
            report = export_project(proj, args.format, args.out, include, args.category,
                                    good_from=args.good_from, polygons=args.polygons,
                                    good_test_fraction=args.good_test_fraction, overwrite=args.overwrite,
                                    test_only=args.test_only)
        except ExportValidationError:
            if attempt == RACE_ATTEMPTS or not proj.records_changed_since_export_items():
                _warn(proj.problems)
                raise
            print("zsas: records were saved while exporting; reading the project again", file=sys.stderr)
            continue
        except ZsasError:
            _warn(proj.problems)
            raise
        _warn(proj.problems)
        print(report)
        left = left_out(proj.summary(), include)
        if left:
            print(left)
        return 0
    raise AssertionError("unreachable")


def _warn(problems: list[str]) -> None:
    for problem in problems:
        print(f"zsas: warning: {problem}", file=sys.stderr)


def left_out(counts: dict[str, int], include: tuple[str, ...]) -> str:
    """One line on the images ``--include`` left out, by status, and how to add them; "" when none."""
    left = {s: n for s, n in counts.items() if s not in include and n}
    if not left:
        return ""
    why = {"unreviewed": "not reviewed yet", "rejected": "their pre-label was rejected"}
    return (f"left out {sum(left.values())} of {sum(counts.values())} images: "
            + ", ".join(f"{n} {s}" for s, n in left.items())
            + f" ({'; '.join(f'{s}: {why[s]}' for s in left if s in why) or 'not in --include'}); "
            f"add them with --include {','.join(include + tuple(left))}")
