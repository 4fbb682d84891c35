"""``zsas segment --ray`` against the local command, same images, same process, same machine.

    PYTHONPATH=$PWD python benchmarks/bench_ray.py [--images N] [--tiny-images N]

Prints (``name: value``):

- ``ray_init_s``: starting a local runtime with ``num_cpus=2`` as ``--ray`` does (paid once per command);
- ``local_images_per_s`` / ``ray_images_per_s`` / ``ray_vs_local_ratio``: full-size random-weight
  models (CLIP ViT-B-16@224 + MobileSAM, the fast preset's architectures; the per-image work
  dominates) on 768x1024 images: the local command with 2 torch threads against ``--ray`` with
  2 one-CPU actors. Both include loading the models (each actor loads its own);
- ``ray_overhead_ms_per_image``: tiny models (little work per image, so Ray's share shows), one
  one-CPU actor: the driver's wall time per image between the first and the last block coming
  back, minus the actor's own time per image for those images (``total_ms`` of the records: read,
  run, write). What is left is Ray's: scheduling blocks, moving batches and results, the finished
  check. Both sides are measured in the same seconds, so a loaded machine slows both alike;
  ``tiny_ms_per_image`` is that own time; ``ray_first_result_s`` the job's start (actor start,
  model loading in the actor, the first block).

Random weights: timings are real, masks meaningless. Not run by CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import emit
from bench_presets import test_image


def write_full_size_models(folder: Path) -> tuple[Path, Path]:
    """Random-weight CLIP ViT-B-16-quickgelu@224 (open_clip folder) and MobileSAM (state dict)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from zsas_gui.core.io.atomic import atomic_write_json
    from zsas_gui.core.models.loading import build_sam_from_arch
    from zsas_gui.core.models.mobile_sam import mobile_sam_arch

    clip_dir, sam_file = folder / "random-vit-b-16", folder / "random-mobile-sam.pth"
    clip_dir.mkdir(parents=True)
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-16-quickgelu", pretrained=None, force_image_size=224)
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(clip_dir / "open_clip_model.safetensors"))
    atomic_write_json(clip_dir / "open_clip_config.json",
                      {"model_cfg": open_clip.get_model_config("ViT-B-16-quickgelu")})
    atomic_write_json(clip_dir / "zsas_model.json", {"kind": "clip", "name": "random-vit-b-16",
                                                     "random_test_model": True, "image_size": 224})
    torch.save(build_sam_from_arch(mobile_sam_arch()).state_dict(), sam_file)
    return clip_dir, sam_file


def write_images(folder: Path, n: int, hw=None) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        img = test_image(i)
        if hw is not None:
            img = img[: hw[0], : hw[1]]
        Image.fromarray(img).save(folder / f"{i:03d}.png")


def timed_segment(images: Path, out: Path, models: list[str], ray_args: list[str]) -> float:
    """Wall seconds of ``zsas segment`` in this process (its output hidden)."""
    from zsas_gui.cli import main

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["segment", str(images), "-o", str(out), *models, "--device", "cpu", *ray_args])
    seconds = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    if rc != 0 or summary["failed"]:
        raise SystemExit(f"segment failed (exit {rc}): {summary['entries']}")
    return seconds


def steady_overhead(images: Path, clip: Path, sam: Path) -> dict[str, float]:
    """Ray's own time per image with one actor, from the driver's block arrival times and the
    actor's per-image times (see the module docstring)."""
    from zsas_gui.core.types import MethodParams, TextPrompts
    from zsas_gui.scale.inputs import list_inputs
    from zsas_gui.scale.job import run_job
    from zsas_gui.scale.runtime import ActorSpec
    from zsas_gui.scale.workers import ModelSpec, SegmentWorker

    items = list_inputs([str(images)])
    kwargs = {"models": ModelSpec(str(clip), str(sam), "cpu"), "params": MethodParams(),
              "text": TextPrompts(), "out": str(images.parent / "tiny-steady"), "save_scores": False,
              "colormap": "jet"}
    arrivals: list[tuple[float, dict]] = []
    t0 = time.perf_counter()
    run_job(items, SegmentWorker, kwargs, ActorSpec(1, 1),
            lambda outcome, entry: arrivals.append((time.perf_counter(), entry)))
    first = arrivals[0][0]
    later = [(t, e) for t, e in arrivals if t > first]
    wall_ms = (later[-1][0] - first) / len(later) * 1e3
    own_ms = sum(e["total_ms"] for _, e in later) / len(later)
    return {"tiny_ms_per_image": own_ms, "ray_overhead_ms_per_image": wall_ms - own_ms,
            "ray_first_result_s": first - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="768x1024 images for the ratio (0: skip it)")
    parser.add_argument("--tiny-images", type=int, default=96, help="256x320 images for the overhead")
    args = parser.parse_args()

    import logging

    import ray
    import torch

    from zsas_gui.core.models.testmodels import make_test_models
    from zsas_gui.scale.runtime import start_local

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        work = Path(tmp)
        clip, sam = write_full_size_models(work / "models")
        tiny_clip, tiny_sam = make_test_models(work / "models")
        write_images(work / "full", args.images)     # 768x1024 (the tiny sets also warm the cache)
        write_images(work / "tiny", args.tiny_images, hw=(256, 320))
        write_images(work / "tiny-small", 2, hw=(256, 320))
        full, tiny = ["--clip", str(clip), "--sam", str(sam)], ["--clip", str(tiny_clip), "--sam", str(tiny_sam)]

        t0 = time.perf_counter()
        # as `--ray` without an address starts it (D43: the workers at this process's priority)
        start_local(ray, num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        emit("ray_init_s", time.perf_counter() - t0)
        try:
            torch.set_num_threads(2)     # warm-up: the ONNX graphs exported once, cached on disk for all
            if args.images:
                timed_segment(work / "tiny-small", work / "warm-full", full, [])
            timed_segment(work / "tiny-small", work / "warm-tiny", tiny, [])
            if args.images:
                local = timed_segment(work / "full", work / "out-local", full, [])
                on_ray = timed_segment(work / "full", work / "out-ray", full, ["--ray", "--actors", "2"])
                emit("images", args.images)
                emit("local_images_per_s", args.images / local)
                emit("ray_images_per_s", args.images / on_ray)
                emit("ray_vs_local_ratio", local / on_ray)

            steady = steady_overhead(work / "tiny", tiny_clip, tiny_sam)
            emit("tiny_images", args.tiny_images)
            for name, value in steady.items():
                emit(name, value)
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
