"""Arguments shared by several subcommands (models, device, method parameters)."""

from __future__ import annotations

import argparse

from ..core.types import NEGATIVE_RULES, MethodParams

#: In-memory feature cache of the batch commands (segment, label, eval): each image is seen once,
#: so nothing is kept between images and memory stays flat however long the batch (a disk
#: cache, ``zsas eval --cache``, still works).
BATCH_CACHE_BYTES = 0


class _PresetAction(argparse.Action):
    """``--preset NAME`` fills ``--clip``/``--sam`` unless they are given (before or after it)."""

    def __call__(self, parser, namespace, value, option_string=None):
        from ..core.engine.presets import get_preset
        from ..core.errors import ZsasError

        try:
            preset = get_preset(value)
        except ZsasError as exc:
            parser.error(str(exc))
        setattr(namespace, self.dest, preset.name)
        explicit = getattr(namespace, "_explicit_models", set())
        if "clip" not in explicit:
            namespace.clip = preset.clip_arg
        if "sam" not in explicit:
            namespace.sam = preset.sam


class _ModelAction(argparse.Action):
    """``--clip``/``--sam``: remembered as explicit, so that a later ``--preset`` keeps them."""

    def __call__(self, parser, namespace, value, option_string=None):
        setattr(namespace, self.dest, value)
        explicit = set(getattr(namespace, "_explicit_models", set()))
        namespace._explicit_models = explicit | {self.dest}


def add_model_args(p: argparse.ArgumentParser) -> None:
    from ..core.engine.presets import PRESETS

    p.add_argument("--preset", action=_PresetAction, default=None, choices=list(PRESETS),
                   help="models by purpose (--clip/--sam override it): "
                        + "; ".join(f"{x.name} = {x.summary}, {x.cost_text}" for x in PRESETS.values()))
    p.add_argument("--clip", action=_ModelAction, default=None, metavar="NAME[@SIZE]|PATH",
                   help="CLIP model: a registry name (see `zsas models list`) or a local path, optionally "
                        "with an input size (ViT-B-16-quickgelu@224) (default: ViT-L-14-336-quickgelu)")
    p.add_argument("--sam", action=_ModelAction, default=None, metavar="NAME|PATH",
                   help="SAM model: a registry name (vit_h, vit_l, vit_b, mobile_sam) or a local "
                        "checkpoint path (default: vit_h)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")


def add_method_args(p: argparse.ArgumentParser) -> None:
    d = MethodParams()
    g = p.add_argument_group("method parameters (ALGORITHM.md)")
    g.add_argument("--object", default="object", help="object name used in the text prompts")
    g.add_argument("--tau", type=float, default=d.tau, help="threshold on the normalised map (eq. 1)")
    g.add_argument("--k-pos", type=int, default=d.k_pos, help="number of positive points")
    g.add_argument("--k-neg", type=int, default=d.k_neg, help="number of negative points")
    g.add_argument("--spacing", type=float, default=d.d_min_1024,
                   help="minimum point spacing, pixels in SAM's 1024 frame")
    g.add_argument("--ring", type=float, default=d.ring_1024, help="ring size, pixels in the 1024 frame")
    g.add_argument("--negatives", choices=NEGATIVE_RULES, default=d.negative_rule,
                   help="how negatives are chosen in the ring")
    g.add_argument("--gate", type=float, default=None,
                   help="image score below which an image is predicted normal (default: off)")
    g.add_argument("--min-area", type=float, default=d.min_area_frac,
                   help="smallest kept component/hole as a fraction of the image")
    g.add_argument("--per-component", action="store_true", help="one cascade per anomaly component")


def method_params_from_args(args: argparse.Namespace) -> MethodParams:
    """MethodParams from parsed arguments; a bad value becomes a user error naming it."""
    from ..core.errors import ZsasError

    try:
        return MethodParams(tau=args.tau, k_pos=args.k_pos, k_neg=args.k_neg,
                            d_min_1024=args.spacing, ring_1024=args.ring,
                            negative_rule=args.negatives, gate=args.gate,
                            min_area_frac=args.min_area, per_component=args.per_component)
    except ValueError as exc:
        raise ZsasError(f"invalid method parameter: {exc}") from exc


def text_prompts_from_args(args: argparse.Namespace):
    from ..core.types import TextPrompts

    try:
        return TextPrompts(object_name=args.object)
    except ValueError as exc:
        from ..core.errors import ZsasError
        raise ZsasError(f"--object: {exc}") from exc


def progress(total: int, desc: str, unit: str = "img"):
    """A tqdm progress bar on stderr (plain counting when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5)
