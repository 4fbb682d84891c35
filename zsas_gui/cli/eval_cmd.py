"""``zsas eval ROOT -o OUT``: pixel and image metrics against ground truth on an MVTec AD layout."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..vocabulary import EXIT_SOME_FAILED
from .common import add_map_args, add_method_args, add_model_args


def _names(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="evaluate against ground truth (MVTec AD layout): AUROC, AP, F1-max, AUPRO, IoU",
        description="Run the method once per test image of an MVTec AD layout (ROOT/test/<class>/, "
                    "ROOT/ground_truth/<class>/NAME_mask.png, test/good/; or ROOT/<category>/...) and "
                    "compare three predictors: heatmap (raw CLIP map), threshold (map cut at tau, no "
                    "SAM) and cps (the method). Writes OUT/metrics.json (per defect class, per "
                    "category and overall), OUT/per_image.csv (IoU/Dice per image), OUT/plots/*.png "
                    "(ROC, PR and PRO curves) and prints a table. Metric definitions and error "
                    "bounds: docs/metrics.md.",
        epilog=f"Exit status: 0 all images evaluated, {EXIT_SOME_FAILED} some images were skipped "
               f"(listed, e.g. a missing or mis-sized mask), 1 nothing could run.")
    p.add_argument("root", type=Path, metavar="ROOT", help="a category folder or a dataset of categories")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    p.add_argument("--category", default=None, metavar="NAME", help="evaluate only this category")
    p.add_argument("--categories", type=_names, default=None, metavar="A,B",
                   help="evaluate only these categories")
    p.add_argument("--classes", type=_names, default=None, metavar="A,B",
                   help="only these defect classes (test/ subfolders), e.g. crack,good")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="at most N images per defect class (quick runs)")
    p.add_argument("--bins", type=int, default=65536,
                   help="histogram bins of the streaming pixel metrics (default 65536)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="disk cache for encoder outputs: a re-run with other method parameters "
                        "skips the CLIP and SAM encoders")
    p.add_argument("--no-plots", action="store_true", help="do not write the curve PNGs")
    add_model_args(p)
    add_method_args(p)
    add_map_args(p)
    p.set_defaults(func=run, object=None)   # --object defaults to each category's name


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ZsasError
    from ..core.evaluation import (
        category_object_name,
        discover,
        evaluate,
        format_table,
        write_csv,
        write_metrics_json,
        write_plots,
    )
    from ..core.io.atomic import check_output_folder
    from ..core.types import TextPrompts
    from .common import (
        build_pipeline,
        check_map_settings,
        fit_map,
        method_params_from_args,
        progress,
        text_prompts_from_args,
        warn_if_test_models,
    )

    params = method_params_from_args(args)
    if args.bins < 16:
        raise ZsasError(f"--bins must be >= 16, got {args.bins}")
    if args.category and args.categories:
        raise ZsasError("give --category or --categories, not both")
    items, problems = discover(args.root, args.category, args.categories, args.classes, args.limit)
    out: Path = args.out
    check_output_folder(out)
    for path, msg in problems:
        print(f"zsas: skipped {path}: {msg}", file=sys.stderr)

    texts: dict[str, TextPrompts] = {}

    def text_for(category: str) -> TextPrompts:
        if category not in texts:
            texts[category] = text_prompts_from_args(args, args.object or category_object_name(category))
        return texts[category]

    from ..core.engine.cache import DiskCache

    disk = DiskCache(args.cache) if args.cache else None
    refs_of = _references_for(args)
    first = items[0].category if items else ""
    pipe, kind = build_pipeline(args, sum(i.category == first for i in items), len(refs_of(items[0])) if items else 0,
                                disk_cache=disk)

    def before_category(category: str, cat_items: list) -> None:
        fit_map(pipe, kind, [i.image for i in cat_items], refs_of(cat_items[0]), desc=category)

    check_map_settings(pipe, params)
    warn_if_test_models(pipe)

    t0 = time.perf_counter()
    with progress(total=len(items), desc="eval", unit="img") as bar:
        def on_image(item, error):
            if error:
                bar.write(f"zsas: skipped {item.image}: {error}", file=sys.stderr)
            bar.update(1)

        result = evaluate(pipe, items, params, text_for, bins=args.bins, on_image=on_image,
                          before_category=before_category)
    result.failures[:0] = problems
    if not result.rows:
        raise ZsasError(f"no image could be evaluated ({len(result.failures)} failed; first: "
                        f"{result.failures[0][0]}: {result.failures[0][1]})")
    from ..core.engine.provenance import run_provenance

    meta = {"root": str(args.root), **run_provenance(pipe, params), "device": args.device,
            "map": {"asked": args.map, "used": kind, **pipe.mapper.info()},
            "params": params.to_dict(), "object_names": {c: t.object_name for c, t in texts.items()},
            "selection": {"category": args.category, "categories": args.categories,
                          "classes": args.classes, "limit": args.limit},
            "pixel_metric_method": f"binned, {args.bins} bins (docs/metrics.md)",
            "seconds": round(time.perf_counter() - t0, 2)}
    write_metrics_json(out / "metrics.json", result, meta)
    write_csv(out / "per_image.csv", result)
    plots = [] if args.no_plots else write_plots(out / "plots", result)
    print(format_table(result))
    print(f"{len(result.rows)} images evaluated -> {out / 'metrics.json'}, {out / 'per_image.csv'}"
          + (f", {len(plots)} plots in {out / 'plots'}" if plots else "")
          + (f"; {len(result.failures)} skipped (listed in metrics.json)" if result.failures else ""))
    return EXIT_SOME_FAILED if result.failures else 0


def _references_for(args: argparse.Namespace):
    """item -> good reference images of its category: ``--references DIR`` when given, else the
    category's ``train/good`` (MVTec AD layout: ROOT/test/<class>/NAME -> ROOT/train/good)."""
    from ..core.io.imageio import find_images
    from .common import reference_images

    given = reference_images(args)

    def refs_of(item) -> list[Path]:
        if given:
            return given
        good = item.image.parent.parent.parent / "train" / "good"
        return find_images(good) if good.is_dir() else []
    return refs_of
