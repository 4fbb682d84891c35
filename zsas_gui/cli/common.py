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
        from ..core.engine.presets import AUTO, get_preset
        from ..core.errors import ZsasError

        if str(value).strip().lower() == AUTO:
            setattr(namespace, self.dest, AUTO)    # resolved after parsing, for --device
            return
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


def apply_default_preset(args: argparse.Namespace) -> None:
    """For commands with model arguments: a model not named comes from ``--preset``, and with no
    preset from ``auto`` (the models recommended for this computer and ``--device``)."""
    if not all(hasattr(args, a) for a in ("preset", "clip", "sam")) or (args.clip and args.sam):
        return
    from ..core.engine.presets import AUTO, get_preset

    preset = get_preset(args.preset or AUTO, getattr(args, "device", "auto"))
    args.preset = preset.name
    args.clip = args.clip or preset.clip_arg
    args.sam = args.sam or preset.sam


def check_models_found(args: argparse.Namespace) -> None:
    """Fail (ModelNotFoundError naming the file and how to get it) before anything is created
    when a model named by ``--clip``/``--sam`` (or the preset) is not there."""
    from ..core.models.loading import split_clip_size
    from ..core.models.registry import resolve_checkpoint

    for kind in ("clip", "sam"):
        resolve_checkpoint(split_clip_size(getattr(args, kind))[0], kind)


def warn_if_test_models(pipe) -> None:
    """Say on stderr when tiny random-weight test models are loaded: their results mean nothing."""
    import sys

    bundles = [b for b in (pipe.clip, pipe.sam) if b is not None]
    names = [b.model_id for b in bundles if b.info.get("random_test_model")]
    if names:
        print(f"zsas: warning: RANDOM-weight test models loaded ({', '.join(names)}): the heatmaps, "
              f"masks and scores are meaningless; use real models (zsas models download auto)",
              file=sys.stderr)


def add_model_args(p: argparse.ArgumentParser) -> None:
    from ..core.engine.presets import AUTO, AUTO_TEXT, PRESETS

    p.add_argument("--preset", action=_PresetAction, default=None, choices=[*PRESETS, AUTO],
                   help="models by purpose, --clip/--sam override it (default: auto): "
                        + "; ".join(f"{x.name} = {x.summary}" for x in PRESETS.values())
                        + f"; {AUTO_TEXT}. Costs: `zsas models list`, docs/benchmarks.md")
    p.add_argument("--clip", action=_ModelAction, default=None, metavar="NAME[@SIZE]|PATH",
                   help="CLIP model: a registry name (see `zsas models list`) or a local path, optionally "
                        "with an input size (ViT-B-16-quickgelu@224) (default: the --preset's)")
    p.add_argument("--sam", action=_ModelAction, default=None, metavar="NAME|PATH",
                   help="SAM model: a registry name (vit_h, vit_l, vit_b, mobile_sam) or a local "
                        "checkpoint path (default: the --preset's)")
    p.add_argument("--device", default="auto",
                   help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps (default: auto)")


def add_method_args(p: argparse.ArgumentParser) -> None:
    d = MethodParams()
    g = p.add_argument_group("method parameters (docs/method.md)")
    g.add_argument("--object", default="object", help="object name used in the text prompts (default: %(default)s)")
    g.add_argument("--tau", type=float, default=d.tau, help="threshold on the normalised map (eq. 1) (default: %(default)s)")
    g.add_argument("--k-pos", type=int, default=d.k_pos, help="number of positive points (default: %(default)s)")
    g.add_argument("--k-neg", type=int, default=d.k_neg, help="number of negative points (default: %(default)s)")
    g.add_argument("--spacing", type=float, default=d.d_min_1024,
                   help="minimum point spacing, pixels in SAM's 1024 frame (default: %(default)s)")
    g.add_argument("--ring", type=float, default=d.ring_1024, help="ring size, pixels in the 1024 frame (default: %(default)s)")
    g.add_argument("--negatives", choices=NEGATIVE_RULES, default=d.negative_rule,
                   help="how negatives are chosen in the ring (default: %(default)s)")
    g.add_argument("--gate", type=float, default=None,
                   help="image score below which an image is predicted normal (default: off)")
    g.add_argument("--min-area", type=float, default=d.min_area_frac,
                   help="smallest kept component/hole as a fraction of the image (default: %(default)s)")
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
