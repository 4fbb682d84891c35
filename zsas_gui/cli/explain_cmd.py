"""``zsas explain IMAGE -o FIGURE.png [--frames DIR]``: the method on one image, stage by stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_map_args, add_method_args, add_model_args


def register(sub) -> None:
    p = sub.add_parser(
        "explain", help="show the method on one image, stage by stage (a figure for slides)",
        description="Run CLIP heatmap -> point prompts -> cascaded SAM on IMAGE and draw every "
                    "intermediate: anomaly map S, extreme region R (eq. 1), ring N (eq. 3), "
                    "SAM-feature similarity, point prompts, and the three cascade stages. "
                    "Writes one figure (1920 px wide, 2 rows x 4 panels) and, with --frames, "
                    "one captioned PNG per step (for a video or a GIF).")
    p.add_argument("image", type=Path, metavar="IMAGE", help="an image file")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="FIGURE.png",
                   help="where to write the figure (PNG)")
    p.add_argument("--frames", type=Path, default=None, metavar="DIR",
                   help="also write DIR/01_heatmap.png ... DIR/08_stage3.png")
    p.add_argument("--colormap", default="jet", help="heatmap colours (jet, turbo, inferno, ...)")
    p.add_argument("--lossless", action="store_true",
                   help="write the figure as full RGB (default: a 256-colour palette PNG, ~1/3 the size)")
    add_model_args(p)
    add_method_args(p)
    add_map_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ZsasError
    from ..core.io.atomic import atomic_write_bytes
    from ..core.io.imageio import find_images, load_image
    from .common import (
        build_pipeline,
        check_map_settings,
        fit_map,
        method_params_from_args,
        reference_images,
        text_prompts_from_args,
    )

    if args.out.suffix.lower() != ".png":
        raise ZsasError(f"-o {args.out}: the figure is written as PNG; name it FIGURE.png")
    if args.out.is_dir():
        raise ZsasError(f"-o {args.out}: is a folder; give a file name such as FIGURE.png")
    if args.frames is not None and args.frames.exists() and not args.frames.is_dir():
        raise ZsasError(f"--frames {args.frames}: not a folder")
    params = method_params_from_args(args)
    text = text_prompts_from_args(args)
    image = load_image(args.image)

    from ..core.engine.pipeline import DEFAULT_CACHE_BYTES
    from ..core.explain.explain import explain_run
    from ..core.explain.explain_figure import figure_png, frame_pngs

    folder = find_images(args.image.parent)     # mutual: the image's own folder
    refs = reference_images(args)
    pipe, kind = build_pipeline(args, len(folder), len(refs), text_prompts=text,
                                cache_bytes=DEFAULT_CACHE_BYTES)
    fit_map(pipe, kind, folder, refs)
    check_map_settings(pipe, method_params_from_args(args))
    expl = explain_run(pipe, image, params, text, image_key=str(args.image))
    device = expl.result.provenance.get("device")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, figure_png(image, expl, args.image.name, device, args.colormap,
                                               compact=not args.lossless))
    print(f"figure -> {args.out}")
    if args.frames is not None:
        args.frames.mkdir(parents=True, exist_ok=True)
        frames = frame_pngs(image, expl, args.image.name, args.colormap)
        for name, png in frames:
            atomic_write_bytes(args.frames / name, png)
        print(f"{len(frames)} frames -> {args.frames}")
    if expl.random_models:
        print("note: random-weight test models: the figure shows the plumbing, not a real detection")
    return 0
