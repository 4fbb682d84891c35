"""``zsas label FOLDER``: pre-label every image of a project as an unreviewed annotation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..vocabulary import EXIT_SOME_FAILED
from .common import add_map_args, add_method_args, add_model_args
from .ray_common import add_ray_args, check_ray_args


def register(sub) -> None:
    p = sub.add_parser(
        "label", help="pre-label a folder of images into its project store (FOLDER/.zsas)",
        description="Run the method on every image of FOLDER and store each result as an "
                    "unreviewed annotation (mask_source auto), ready for review in zsas-gui. Images "
                    "already reviewed are never touched; images already pre-labelled are skipped, "
                    "so an interrupted run resumes where it stopped. With --from-masks, existing "
                    "masks (a zsas export, MVTec ground_truth/ or plain PNG masks) are imported instead.",
        epilog=f"Exit status: 0 done, {EXIT_SOME_FAILED} some images failed (listed), 1 nothing "
               f"could run (message says why).")
    p.add_argument("folder", type=Path, metavar="FOLDER", help="folder of images (the project)")
    p.add_argument("--redo", action="store_true",
                   help="run again on unreviewed images that already have a pre-label")
    g = p.add_argument_group("import instead of running the method")
    g.add_argument("--from-masks", type=Path, default=None, metavar="DIR",
                   help="import the masks under DIR (a zsas png/mvtec/folder export, MVTec layout, or PNG "
                        "masks mirroring FOLDER)")
    g.add_argument("--import-status", choices=("unreviewed", "accepted"), default="unreviewed",
                   help="status given to imported masks (default: unreviewed)")
    g.add_argument("--missing-good", action="store_true",
                   help="mark images without a mask as good (ground truth that lists every defect)")
    g.add_argument("--allow-unmatched", action="store_true",
                   help="import even when some mask files match no image (default: refuse, import nothing)")
    add_model_args(p)
    add_method_args(p)
    add_map_args(p)
    add_ray_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ZsasError
    from ..state.project import Project
    from .common import check_models_found

    check_ray_args(args)
    if args.ray is not None and args.from_masks is not None:
        raise ZsasError("--from-masks imports masks, --ray runs the method: use one of them")
    if args.from_masks is None:
        check_models_found(args)          # a missing model fails before FOLDER/.zsas is created
    proj = Project.open(args.folder)
    for problem in proj.problems:
        print(f"zsas: warning: {problem}", file=sys.stderr)
    if args.from_masks is not None:
        return _import(proj, args)
    return _label(proj, args)


def _import(proj, args) -> int:
    from ..state.importer import import_masks

    report = import_masks(proj, args.from_masks, status=args.import_status, missing_good=args.missing_good,
                          allow_unmatched=args.allow_unmatched)
    for line in report.failed:
        print(f"zsas: skipped {line}", file=sys.stderr)
    print(report)
    return EXIT_SOME_FAILED if report.failed else 0


def _label(proj, args) -> int:
    from ..core.errors import ZsasError
    from ..core.io.imageio import load_image
    from ..state.prelabel import save_prelabel
    from .common import (
        build_pipeline,
        check_map_settings,
        fit_map,
        method_params_from_args,
        progress,
        reference_images,
        text_prompts_from_args,
        warn_if_test_models,
    )

    params = method_params_from_args(args)
    text = text_prompts_from_args(args)
    todo = [e for e in proj.images
            if proj.status(e.rel) == "unreviewed" and proj.problem_for(e.rel) is None
            and (args.redo or not proj.has_mask(e.rel))]
    reviewed = sum(proj.status(e.rel) != "unreviewed" for e in proj.images)
    if not todo:
        print(f"nothing to do: {len(proj.images)} images, {reviewed} reviewed, the rest pre-labelled "
              f"(--redo runs unreviewed ones again)")
        return 0
    if args.ray is not None:
        from .ray_common import label_on_ray
        return _finish(proj, todo, reviewed, label_on_ray(proj, todo, args, params, text))
    usable = [e for e in proj.images if proj.problem_for(e.rel) is None]
    refs = reference_images(args) or [e.path for e in usable if proj.status(e.rel) == "good"]
    pipe, kind = build_pipeline(args, len(usable), len(refs), text_prompts=text)
    fit_map(pipe, kind, [e.path for e in usable], refs)
    check_map_settings(pipe, params)
    warn_if_test_models(pipe)
    failed, kept = [], 0
    with progress(total=len(todo), desc="label", unit="img") as bar:
        for entry in todo:
            try:
                image = load_image(entry.path)
                result = pipe.run(None, image, params, text)
            except ZsasError as exc:
                failed.append(f"{entry.rel}: {exc}")
                bar.write(f"zsas: skipped {entry.rel}: {exc}", file=sys.stderr)
                bar.update(1)
                continue
            if not save_prelabel(proj, entry.rel, result, params, text):   # reviewed meanwhile: kept
                kept += 1
            bar.update(1)
    return _finish(proj, todo, reviewed, failed, kept)


def _finish(proj, todo: list, reviewed: int, failed: list[str], kept: int = 0) -> int:
    done = len(todo) - len(failed) - kept
    print(f"{done}/{len(todo)} images pre-labelled in {proj.root} ({reviewed + kept} reviewed images kept)"
          + (f"; {len(failed)} failed" if failed else ""))
    return EXIT_SOME_FAILED if failed else 0
