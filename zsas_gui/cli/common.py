"""Arguments shared by several subcommands (models, device, method parameters)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.types import NEGATIVE_RULES, MapSettings, MethodParams

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
                   help="minimum spacing of positive points, pixels in SAM's 1024 frame (default: %(default)s)")
    g.add_argument("--spacing-neg", type=float, default=d.d_min_neg_1024,
                   help="minimum spacing of negative points, pixels in SAM's 1024 frame (default: %(default)s)")
    g.add_argument("--ring", type=float, default=d.ring_1024,
                   help="ring size, pixels in the 1024 frame (default: %(default)s)")
    g.add_argument("--negatives", choices=NEGATIVE_RULES, default=d.negative_rule,
                   help="how negatives are chosen in the ring (default: %(default)s)")
    g.add_argument("--gate", type=float, default=None,
                   help="image score below which an image is predicted normal (default: off)")
    g.add_argument("--min-area", type=float, default=d.min_area_frac,
                   help="smallest kept component/hole as a fraction of the image (default: %(default)s)")
    g.add_argument("--per-component", action="store_true", help="one cascade per anomaly component")
    g.add_argument("--outside-weight", type=float, default=d.outside_weight,
                   help="score_map = map * (w + (1 - w) * mask): the pixel score outside the mask (0-1)")
    m = d.clip_map
    a = p.add_argument_group("advanced: the CLIP map (docs/method.md; recorded with every result)")
    a.add_argument("--clip-size", type=int, default=None, metavar="PX",
                   help="CLIP input side in pixels (same as --clip NAME@PX; default: the model's own)")
    a.add_argument("--vv-start", type=int, default=m.vv_start, metavar="BLOCK",
                   help="0-based block where the V-V surgery stream starts (default: 1/6 of the "
                        "blocks, at or before the first depth)")
    a.add_argument("--depths", type=_int_list, default=m.depths, metavar="A,B,..",
                   help="0-based blocks whose surgery tokens make the map (default: 4 evenly "
                        "spaced ending at the last block, 5,11,17,23 for 24 blocks)")
    a.add_argument("--temperature", type=float, default=m.temperature,
                   help="softmax temperature of the token-vs-text cosine")
    a.add_argument("--blur", type=float, default=m.blur_sigma_518, metavar="SIGMA",
                   help="Gaussian blur sigma of the map in pixels at 518 scale (0 = none)")
    a.add_argument("--prompts", type=Path, default=None, metavar="FILE.json",
                   help="text prompt lists: a JSON object with any of normal_states, "
                        "abnormal_states, templates (lists of strings with {})")


def _int_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated block numbers, got {value!r}") from None


def clip_arg(args: argparse.Namespace) -> str | None:
    """The ``--clip`` value with ``--clip-size`` applied (``NAME@PX``)."""
    if not getattr(args, "clip_size", None):
        return args.clip
    from ..core.models.loading import split_clip_size
    from ..core.models.registry import default_name

    base, _ = split_clip_size(args.clip or default_name("clip"))
    return f"{base}@{args.clip_size}"


def check_map_settings(pipe, params: MethodParams) -> None:
    """Refuse, before the first image, CLIP map settings the loaded model cannot take (a depth
    past its last block, a depth before ``vv_start``): :class:`ZsasError` naming the model."""
    if hasattr(pipe.mapper, "with_settings"):
        pipe.mapper.with_settings(params.clip_map)


def method_params_from_args(args: argparse.Namespace) -> MethodParams:
    """MethodParams from parsed arguments; a bad value becomes a user error naming it."""
    from ..core.errors import ZsasError

    try:
        clip_map = MapSettings(vv_start=args.vv_start, depths=args.depths, temperature=args.temperature,
                               blur_sigma_518=args.blur)
        return MethodParams(tau=args.tau, k_pos=args.k_pos, k_neg=args.k_neg,
                            d_min_1024=args.spacing, d_min_neg_1024=args.spacing_neg, ring_1024=args.ring,
                            negative_rule=args.negatives, gate=args.gate,
                            min_area_frac=args.min_area, per_component=args.per_component,
                            outside_weight=args.outside_weight, clip_map=clip_map)
    except ValueError as exc:
        raise ZsasError(f"invalid method parameter: {exc}") from exc


def text_prompts_from_args(args: argparse.Namespace, object_name: str | None = None):
    """TextPrompts from ``--object`` (or ``object_name``) and the lists of ``--prompts FILE``."""
    from ..core.errors import ZsasError
    from ..core.types import TextPrompts

    lists = {}
    if getattr(args, "prompts", None) is not None:
        import json

        try:
            data = json.loads(args.prompts.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ZsasError(f"{args.prompts}: cannot read the prompt lists ({exc})") from exc
        keys = ("normal_states", "abnormal_states", "templates")
        if not isinstance(data, dict) or not set(data) <= set(keys) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()):
            raise ZsasError(f"{args.prompts}: expected a JSON object with lists of strings under "
                            f"{', '.join(keys)}")
        lists = {k: tuple(v) for k, v in data.items()}
    try:
        return TextPrompts(object_name=object_name or args.object, **lists)
    except ValueError as exc:
        where = f"{args.prompts}" if lists else "--object"
        raise ZsasError(f"{where}: {exc}") from exc


def progress(total: int, desc: str, unit: str = "img"):
    """A tqdm progress bar on stderr (plain counting when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5)


#: Memory cache of a batch run with a folder map: the folder's features are held by the mapper
#: anyway; the cache lets the run re-use them instead of encoding each image twice.
FOLDER_CACHE_BYTES = 1 << 30


def add_map_args(p: argparse.ArgumentParser) -> None:
    from ..core.maps.folder_select import DEFAULT_MAX_OTHERS, MAP_KINDS

    g = p.add_argument_group("heatmap source (docs/method.md, folder maps)")
    g.add_argument("--map", choices=MAP_KINDS, default="text",
                   help="text: CLIP text prompts (default); mutual: each image against the other "
                        "images of the folder; references: against good images (--references); "
                        "auto: references if given, else mutual for 3+ images, else text")
    g.add_argument("--references", type=Path, default=None, metavar="DIR",
                   help="folder of defect-free images for --map references/auto")
    g.add_argument("--backbone", default=None, metavar="clip|timm:ARCH",
                   help="patch features of the folder maps: the CLIP image tower (default) or a "
                        "timm model, e.g. timm:efficientnet_lite0 (needs --backbone-weights); the "
                        "registry backbones (timm:dinov2_vits14, timm:dinov2_vitb14, "
                        "timm:wide_resnet50_2) use their file from `zsas models download NAME`")
    g.add_argument("--backbone-weights", default=None, metavar="FILE",
                   help="timm state dict (.safetensors or .pth) for --backbone timm:ARCH; "
                        "'random' = untrained (baselines only)")
    g.add_argument("--max-others", type=int, default=DEFAULT_MAX_OTHERS, metavar="N",
                   help="mutual map: compare each image with at most N others (seeded subset)")
    g.add_argument("--text-weight", type=float, default=0.0, metavar="W",
                   help="references map: fuse it with the CLIP text map at weight W in (0, 1] "
                        "(each scaled on the good images; default 0 = off; docs/method.md)")
    g.add_argument("--patch-distance", choices=("auto", "euclidean", "cosine"), default="auto",
                   help="folder maps: how patch features are compared; auto = the backbone's "
                        "(Euclidean for CNN stages, cosine for ViT tokens; docs/decisions.md D39)")
    g.add_argument("--no-density", action="store_true",
                   help="folder maps: plain nearest-patch distances, not relative to the spread "
                        "of normal patches (docs/decisions.md D40)")
    g.add_argument("--tau-mode", choices=("relative", "absolute"), default="relative",
                   help="folder maps: relative = tau on each image's min-max map; absolute = tau "
                        "on one folder-wide scale (0.5 = the calibration images' high level)")


def reference_images(args: argparse.Namespace) -> list[Path]:
    """Images under ``--references DIR`` (none when not given)."""
    from ..core.errors import ZsasError
    from ..core.io.imageio import find_images

    if args.references is None:
        return []
    if not args.references.is_dir():
        raise ZsasError(f"--references {args.references}: not a folder")
    found = find_images(args.references)
    if not found:
        raise ZsasError(f"--references {args.references}: no images inside")
    return found


def map_spec_from_args(args: argparse.Namespace, kind: str):
    """The :class:`~zsas_gui.core.engine.map_spec.MapSpec` of ``--map`` (resolved to ``kind``)
    and its flags."""
    from ..core.engine.map_spec import MapSpec
    from ..core.errors import ZsasError

    text_weight = float(getattr(args, "text_weight", 0.0) or 0.0)
    if text_weight and kind != "references":
        raise ZsasError(f"--text-weight fuses the references map with the text map; this run uses "
                        f"the {kind} map (give --map references with --references DIR)")
    if not 0.0 <= text_weight <= 1.0:
        raise ZsasError(f"--text-weight {text_weight}: give a weight in (0, 1] (0 = no fusion)")
    return MapSpec(kind=kind, backbone=args.backbone, backbone_weights=args.backbone_weights,
                   max_others=args.max_others, absolute=args.tau_mode == "absolute",
                   text_weight=text_weight, distance=getattr(args, "patch_distance", "auto"),
                   density=not getattr(args, "no_density", False))


def build_pipeline(args: argparse.Namespace, n_folder: int, n_references: int, **kwargs):
    """The pipeline for ``--map`` (text: CLIP V-V; mutual/references: a folder mapper on
    ``--backbone``, not fitted yet) and the concrete map kind."""
    from ..core.engine.map_spec import map_pipeline
    from ..core.maps.folder_select import resolve_map_kind

    kind = resolve_map_kind(args.map, n_references, n_folder)
    kwargs.setdefault("cache_bytes", BATCH_CACHE_BYTES if kind == "text" else FOLDER_CACHE_BYTES)
    return map_pipeline(map_spec_from_args(args, kind), clip_arg(args), args.sam, args.device, **kwargs), kind


def fit_map(pipe, kind: str, folder: list, references: list, desc: str = "folder pass") -> None:
    """Fit a folder map (nothing for text) with a progress bar: the folder for mutual, the good
    images for references. An unreadable image is left out of the map with a warning (the run
    then reports it like any unreadable image)."""
    if kind == "text":
        return
    from ..core.engine.folder_maps import iter_fit_folder

    paths = references if kind == "references" else folder
    unreadable: list[str] = []
    with progress(total=2 * len(paths), desc=f"{desc} ({kind})", unit="step") as bar:
        for stage, done, _ in iter_fit_folder(pipe, paths, unreadable):
            if done:
                bar.update(1)
    for message in unreadable:
        print(f"zsas: warning: left out of the {kind} map: {message}", file=sys.stderr)
