"""``--ray [ADDRESS]`` of ``zsas segment`` and ``zsas label``: the flags and the two drivers
(the job itself is :mod:`zsas_gui.scale`). Nothing here imports Ray at ``--help`` time."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..scale.runtime import INSTALL_HINT, LOCAL


def add_ray_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(f"on a Ray cluster (needs {INSTALL_HINT}; see docs/scale.md)")
    g.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                   help="run on Ray: without ADDRESS a runtime on this machine; 'auto' or an "
                        "address (host:6379, ray://host:10001) joins a cluster. Put it after the "
                        "paths, or write --ray=ADDRESS")
    g.add_argument("--actors", default=None, metavar="N|MIN,MAX",
                   help="model-holding actors: a fixed N or autoscaling MIN,MAX (default: one per "
                        "GPU, or per --actor-cpus CPUs, of the cluster)")
    g.add_argument("--actor-cpus", type=float, default=1.0, metavar="N",
                   help="CPUs reserved by each actor on clusters without GPUs (default: 1)")


def check_ray_args(args: argparse.Namespace) -> None:
    from ..core.errors import ZsasError

    if args.ray is None and (args.actors is not None or args.actor_cpus != 1.0):
        raise ZsasError("--actors and --actor-cpus apply to --ray runs only; add --ray")
    if args.ray is not None and Path(args.ray).exists():
        raise ZsasError(f"--ray took {args.ray!r} as the cluster address; put --ray after the paths "
                        f"or write --ray=ADDRESS")
    if args.actor_cpus <= 0:
        raise ZsasError(f"--actor-cpus must be positive, got {args.actor_cpus}")
    if args.ray is not None:
        from ..scale.runtime import require_ray
        require_ray()         # before anything is read or written: say how to install it


def _reporter(bar):
    """on_result for :func:`~zsas_gui.scale.job.run_job`: failures named on stderr, the bar moves."""
    def on_result(outcome: str, entry: dict) -> None:
        if outcome == "failed":
            bar.write(f"zsas: skipped {entry['image']}: {entry['error']}", file=sys.stderr)
        bar.update(1)
    return on_result


def _models(args: argparse.Namespace, kind: str, references: list[Path]):
    """What each actor loads, the heatmap source ``kind`` (resolved from ``--map``) included."""
    from ..scale.workers import ModelSpec
    from .common import BATCH_CACHE_BYTES, FOLDER_CACHE_BYTES, clip_arg, map_spec_from_args

    return ModelSpec(clip=clip_arg(args), sam=args.sam, device=args.device,
                     cache_bytes=BATCH_CACHE_BYTES if kind == "text" else FOLDER_CACHE_BYTES,
                     map=map_spec_from_args(args, kind), references=tuple(str(p) for p in references))


def _map_groups(args: argparse.Namespace, kind: str, folder: list[str], todo: list[str]):
    """For ``--map mutual``: the groups each actor fits and segments whole (:mod:`..scale.groups`)
    as (fit images, indices into ``todo``); None for the other maps (any image on any actor)."""
    if kind != "mutual":
        return None
    from ..core.maps.folder_select import MIN_FOLDER
    from ..scale.groups import folder_groups

    where = {src: i for i, src in enumerate(todo)}
    max_size = args.max_others + 1
    groups = []
    for members in folder_groups(folder, max_size, min(MIN_FOLDER, max_size)):
        fit = [folder[i] for i in members]
        if wanted := [where[src] for src in fit if src in where]:
            groups.append((fit, wanted))
    return groups


def segment_on_ray(args: argparse.Namespace) -> int:
    """``zsas segment PATH... -o OUT --ray``: the local command's files, made by Ray actors."""
    import json

    from ..core.engine.segment_job import SegmentJob
    from ..core.errors import ZsasError
    from ..core.maps.folder_select import resolve_map_kind
    from ..scale.inputs import is_uri, list_inputs
    from ..scale.job import run_job
    from ..scale.runtime import actor_spec, connected
    from ..scale.workers import SegmentWorker, check_earlier_run
    from .common import method_params_from_args, progress, reference_images, text_prompts_from_args
    from .segment_cmd import EXIT_SOME_FAILED

    if is_uri(str(args.out)):
        raise ZsasError(f"-o {args.out}: the output must be a folder every worker can reach (a shared "
                        f"file system mounted at the same path); object-store outputs are not supported")
    items = list_inputs(args.paths)
    job = SegmentJob(args.out, save_scores=args.save_scores, colormap=args.colormap)
    job.prepare_output()
    params, text = method_params_from_args(args), text_prompts_from_args(args)
    check_earlier_run(job.out, params, text)
    refs = reference_images(args)
    kind = resolve_map_kind(args.map, len(refs), len(items))
    srcs = [src for src, _ in items]
    groups = _map_groups(args, kind, srcs, srcs)
    worker_kwargs = {"models": _models(args, kind, refs), "params": params, "text": text,
                     "out": str(Path(args.out).resolve()), "save_scores": args.save_scores,
                     "colormap": args.colormap}
    t0 = time.perf_counter()
    with connected(args.ray, args.verbose) as ray:
        spec = actor_spec(ray, args.actors, args.device, args.actor_cpus)
        with progress(total=len(items), desc="segment", unit="img") as bar:
            results = run_job(items, SegmentWorker, worker_kwargs, spec, _reporter(bar), args.verbose,
                              groups=groups)
    job.entries = [entry for _, entry in results]
    done = [e for e in job.entries if e["ok"]]
    run = {"models": {"clip": args.clip, "sam": args.sam}}
    if done:     # the models, digests and map settings as the workers loaded them (as a local summary)
        record = json.loads((job.out / "records" / f"{done[0]['rel']}.json").read_text(encoding="utf-8"))
        run = {k: record[k] for k in ("models", "checkpoints", "anomaly_map") if k in record} or run
    job.write_summary(run, params, text, time.perf_counter() - t0)
    kept = sum(outcome == "kept" for outcome, _ in results)
    failed = len(items) - len(done)
    print(f"{len(done)}/{len(items)} images segmented -> {args.out}"
          + (f" ({kept} finished by an earlier run, kept)" if kept else "")
          + (f"; {failed} failed (see {job.out / 'summary.json'})" if failed else ""))
    return EXIT_SOME_FAILED if failed else 0


def label_on_ray(proj, todo: list, args: argparse.Namespace, params, text) -> list[str]:
    """``zsas label FOLDER --ray``: pre-labels of ``todo`` (ImageEntry list) written by Ray
    actors into the project store. Returns the failures as "rel: message" lines."""
    from ..core.maps.folder_select import resolve_map_kind
    from ..scale.job import run_job
    from ..scale.runtime import actor_spec, connected
    from ..scale.workers import LabelWorker
    from .common import progress, reference_images

    items = [(str(entry.path), entry.rel) for entry in todo]
    usable = [e for e in proj.images if proj.problem_for(e.rel) is None]
    refs = reference_images(args) or [e.path for e in usable if proj.status(e.rel) == "good"]
    kind = resolve_map_kind(args.map, len(refs), len(usable))     # the local run's choice (label_cmd)
    groups = _map_groups(args, kind, [str(e.path) for e in usable], [src for src, _ in items])
    worker_kwargs = {"models": _models(args, kind, refs), "params": params, "text": text,
                     "folder": str(proj.root)}
    with connected(args.ray, args.verbose) as ray:
        spec = actor_spec(ray, args.actors, args.device, args.actor_cpus)
        with progress(total=len(items), desc="label", unit="img") as bar:
            results = run_job(items, LabelWorker, worker_kwargs, spec, _reporter(bar), args.verbose,
                              groups=groups)
    return [f"{entry['rel']}: {entry['error']}" for outcome, entry in results if outcome == "failed"]
