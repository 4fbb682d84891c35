"""``zsas segment PATH... -o OUT``: the method on every image, masks and records written."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..vocabulary import EXIT_SOME_FAILED
from .common import add_map_args, add_method_args, add_model_args
from .ray_common import add_ray_args, check_ray_args


def register(sub) -> None:
    p = sub.add_parser(
        "segment", help="segment anomalies in images or folders (recursive)",
        description="Run CLIP heatmap -> point prompts -> cascaded SAM on every image under PATH. "
                    "Writes OUT/masks/REL.png (0/255), heatmaps/, overlays/, records/REL.json, "
                    "scores/REL.npy (--save-scores) and OUT/summary.json.",
        epilog=f"Exit status: 0 all images done, {EXIT_SOME_FAILED} some images failed (listed), "
               f"1 nothing could run (message says why).")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    p.add_argument("--save-scores", action="store_true", help="also write float32 score_map .npy files")
    p.add_argument("--colormap", default="jet", help="heatmap colours (jet, turbo, inferno, ...)")
    add_model_args(p)
    add_method_args(p)
    add_map_args(p)
    add_ray_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.engine.segment_job import SegmentJob, collect_inputs
    from ..core.errors import OutputError, ZsasError
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

    check_ray_args(args)
    if args.ray is not None:
        from .ray_common import segment_on_ray
        return segment_on_ray(args)
    items = collect_inputs(args.paths)
    job = SegmentJob(args.out, save_scores=args.save_scores, colormap=args.colormap)
    job.prepare_output()
    params = method_params_from_args(args)
    text = text_prompts_from_args(args)
    refs = reference_images(args)
    pipe, kind = build_pipeline(args, len(items), len(refs), text_prompts=text)
    fit_map(pipe, kind, [src for src, _ in items], refs)
    check_map_settings(pipe, params)
    warn_if_test_models(pipe)
    t0 = time.perf_counter()
    failed = 0
    with progress(total=len(items), desc="segment", unit="img") as bar:
        for src, rel in items:
            try:
                job.process(pipe, src, rel, params)
            except OutputError:
                raise             # the output cannot be written (disk full, read-only): stop now
            except ZsasError as exc:
                failed += 1
                job.record_failure(src, rel, str(exc))
                bar.write(f"zsas: skipped {src}: {exc}", file=sys.stderr)
            bar.update(1)
    from ..core.engine.provenance import run_provenance

    job.write_summary(run_provenance(pipe, params), params, text, time.perf_counter() - t0)
    done = len(items) - failed
    print(f"{done}/{len(items)} images segmented -> {args.out}"
          + (f"; {failed} failed (see {args.out / 'summary.json'})" if failed else ""))
    return EXIT_SOME_FAILED if failed else 0
