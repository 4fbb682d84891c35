"""``zsas models list|download|verify|path|make-test-models``: the model cache from the shell.

Imports stay light at module level (no torch): ``zsas --help`` loads this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.errors import DownloadError, ZsasError
from ..core.models import registry
from ..core.models.registry import MODELS_DIR_ENV, ModelSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list, download, verify and locate model checkpoints",
        description=f"Manage the model cache (default {registry.models_dir()}; set {MODELS_DIR_ENV} to "
                    f"use another folder). A local checkpoint file always works too: --clip PATH / "
                    f"--sam PATH.")
    p.set_defaults(func=lambda args: _no_action(p))
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")

    q = sub.add_parser("list", help="known models, their size and whether they are installed")
    q.add_argument("--kind", choices=registry.KINDS, default=None, help="only CLIP, SAM or folder-map backbone models")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("download", help="download models (resumable, checksum-verified)",
                       description="Download models into the cache. An interrupted download resumes "
                                   "where it stopped when run again.")
    q.add_argument("names", nargs="+", metavar="NAME",
                   help="registry names (see `zsas models list`), a preset name (fast, balanced, best), "
                        "`auto` (also `defaults`: the models recommended for this computer, the ones "
                        "zsas and zsas-gui use when no model is named) or `all`")
    q.add_argument("--dir", type=Path, default=None,
                   help=f"download into this folder instead of the cache (then point {MODELS_DIR_ENV} "
                        f"at it, or pass the file with --clip/--sam/--backbone-weights)")
    q.set_defaults(func=cmd_download)

    q = sub.add_parser("verify", help="check installed files against their size and checksum")
    q.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: all installed)")
    q.add_argument("--dir", type=Path, default=None, help="check files in this folder instead of the cache")
    q.set_defaults(func=cmd_verify)

    q = sub.add_parser("path", help="print the cache folder, or the file a model name resolves to")
    q.add_argument("name", nargs="?", metavar="NAME", help="a registry name (default: print the folder)")
    q.add_argument("--expected", action="store_true",
                   help="print where NAME belongs in the cache even if it is not there yet")
    q.set_defaults(func=cmd_path)

    q = sub.add_parser("make-test-models", help="write tiny random CLIP and SAM checkpoints: DIR/tiny-clip, "
                                                "DIR/tiny-sam, and DIR/tiny-sam2, DIR/tiny-sam-hq when sam2 / "
                                                "segment-anything-hq are installed (for tests and demos; "
                                                "useless for real results)")
    q.add_argument("dir", type=Path, metavar="DIR", help="output folder")
    q.set_defaults(func=cmd_make_test_models)


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _names_to_specs(names: list[str]) -> list[ModelSpec]:
    from ..core.engine.presets import get_preset, preset_names

    specs: list[ModelSpec] = []
    for name in names:
        if name.lower() == "all":
            chosen = registry.list_specs()
        elif name.lower() in ("defaults", "auto", *preset_names()):
            preset = get_preset("auto" if name.lower() == "defaults" else name)
            chosen = [registry.get_spec(preset.clip, "clip"), registry.get_spec(preset.sam, "sam")]
        else:
            chosen = [registry.get_spec(name)]
        specs += [s for s in chosen if s not in specs]
    return specs


def _status(spec: ModelSpec, folder: Path) -> str:
    target = folder / spec.file_name
    part = target.with_name(target.name + ".part")
    if target.is_file():
        size = target.stat().st_size
        if spec.size_bytes is None or size == spec.size_bytes:
            return "installed"
        return "wrong size"
    if part.is_file() and spec.size_bytes:
        return f"partial {100 * part.stat().st_size // spec.size_bytes}%"
    return "missing"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]).rstrip() for r in rows)


def cmd_list(args: argparse.Namespace) -> int:
    folder = registry.models_dir()
    rows = [["NAME", "KIND", "SIZE", "STATUS", "PATH"]]
    for spec in registry.list_specs(args.kind):
        rows.append([spec.name + (" *" if spec.default else ""), spec.kind, spec.size_text,
                     _status(spec, folder), str(folder / spec.file_name)])
    print(_table(rows))
    print(f"\n* default.  Model folder: {folder}"
          + (f"  (from {MODELS_DIR_ENV})" if os.environ.get(MODELS_DIR_ENV, "").strip()
             else f"  (set {MODELS_DIR_ENV} to change)"))
    return 0


class _Bar:
    """tqdm bar fed by ``progress(done, total)`` callbacks."""

    def __init__(self, desc: str, total: int | None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                        file=sys.stderr, dynamic_ncols=True, leave=True)

    def __call__(self, done: int, total: int | None) -> None:
        if total is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
        if done != self.bar.n:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def cmd_download(args: argparse.Namespace) -> int:
    from ..core.models import download as dl

    specs = _names_to_specs(args.names)
    failed = 0
    for spec in specs:
        bar = _Bar(spec.name, spec.size_bytes)
        try:
            path = dl.download(spec, dest_dir=args.dir, progress=bar)
        except DownloadError as exc:
            bar.close()
            print(f"zsas: error: {spec.name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        except KeyboardInterrupt:
            bar.close()
            print(f"\n{spec.name}: interrupted; the partial download is kept and "
                  f"`zsas models download {spec.name}` resumes it", file=sys.stderr)
            raise
        bar.close()
        print(f"{spec.name}: {path}")
    if args.dir is not None and Path(args.dir).expanduser() != registry.models_dir():
        print(f"note: {args.dir} is not the model cache; set {MODELS_DIR_ENV}={args.dir} or pass the "
              f"files with --clip/--sam", file=sys.stderr)
    return 1 if failed else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..core.models import download as dl

    folder = Path(args.dir).expanduser() if args.dir is not None else registry.models_dir()
    if args.names:
        specs = _names_to_specs(args.names)
    else:
        specs = [s for s in registry.list_specs() if (folder / s.file_name).is_file()]
        if not specs:
            print(f"no models installed in {folder}; see `zsas models list`")
            return 0
    bad = 0
    for spec in specs:
        path = folder / spec.file_name
        bar = _Bar(f"checking {spec.name}", path.stat().st_size) if path.is_file() else None
        try:
            ok, message = dl.verify(path, spec, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        print(f"{spec.name}: {'OK' if ok else 'FAILED'}: {message}")
        bad += not ok
    return 1 if bad else 0


def cmd_path(args: argparse.Namespace) -> int:
    if not args.name:
        print(registry.models_dir())
        return 0
    spec = registry.get_spec(args.name)
    if args.expected:
        print(registry.installed_path(spec))
    else:
        print(registry.resolve_checkpoint(args.name, spec.kind))
    return 0


def cmd_make_test_models(args: argparse.Namespace) -> int:
    from ..core.models.testmodels import make_test_models

    result = make_test_models(args.dir)
    if isinstance(result, dict):
        for key, value in result.items():
            print(f"{key}: {value}")
    elif isinstance(result, (list, tuple)):
        for value in result:
            print(value)
    else:
        raise ZsasError(f"make_test_models returned {result!r}, expected two paths")
    for extra in ("tiny-sam2", "tiny-sam-hq"):      # written when their packages are installed
        if (args.dir / extra).is_dir():
            print(args.dir / extra)
    return 0
