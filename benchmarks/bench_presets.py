"""Time a preset end to end: the first result on a new image, and showing a precomputed one.

    python benchmarks/bench_presets.py                      # the fast preset (MobileSAM + ViT-B/16)
    python benchmarks/bench_presets.py --preset balanced --images 2

Random weights of the preset's architectures (timings only; maps and masks are meaningless),
CPU, fp32, a 1024x768 image. Printed as ``name: value`` lines (medians over ``--images``):

- ``fast_first_result_s``: a new image through ``Pipeline.run``: CLIP map + SAM embedding +
  point prompts + cascade + cleanup, disk-cache writes included; text features and the decoder
  export are per session, done before (their one-time costs are printed separately);
- ``next_image_ms``: moving to a precomputed image in the app: the real window (offscreen) over a
  folder of ``--next-images`` images after "Precompute folder", from selecting the next image
  to the window having shown its heatmap, points and mask (median; measured by
  ``bench_gui_next.measure``, whose other figures are printed indented);
- ``next_image_compute_ms``: the same image without anything computed ahead: a fresh
  ``Pipeline`` (empty memory caches) reads its CLIP tokens and SAM embedding from the disk
  cache, computes the map, proposes points and refines (what the app's lane does when the
  automatic result was not computed ahead).
(``<preset>_first_result_s`` for presets other than ``fast``.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import preset_bundles

HW = (768, 1024)


def test_image(seed: int) -> np.ndarray:
    """(768, 1024, 3) uint8: grey texture with one bright defect-like blob."""
    rng = np.random.default_rng(seed)
    img = rng.integers(90, 130, size=(*HW, 3), dtype=np.uint8)
    cy, cx = rng.integers(150, HW[0] - 150), rng.integers(150, HW[1] - 150)
    yy, xx = np.mgrid[: HW[0], : HW[1]]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < 40 ** 2] = 230
    return img


def time_clip_sizes(preset, sizes: list[int], repeat: int = 3) -> int:
    """Median wall and CPU time of the mapper's ``encode_image`` per CLIP input size."""
    import dataclasses

    import torch

    from zsas_gui.core.maps.anomaly_map import VVAnomalyMapper

    image = test_image(0)
    for size in sizes:
        clip, _ = preset_bundles(dataclasses.replace(preset, clip_size=size, sam="mobile_sam"))
        mapper = VVAnomalyMapper(clip)
        wall, cpu = [], []
        with torch.inference_mode():
            mapper.encode_image(image)
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                mapper.encode_image(image)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        print(f"clip_encode_s@{size}: {statistics.median(wall):.2f}   (CPU time {statistics.median(cpu):.2f} s, "
              f"{torch.get_num_threads()} threads, {preset.clip})")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--images", type=int, default=5, help="new images timed (medians reported)")
    ap.add_argument("--next-images", type=int, default=9, help="folder size for next_image_ms (0: skip)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--decoder", default="auto", help="Pipeline decoder: auto, onnx, fast, torch")
    ap.add_argument("--encoder", default="auto", help="Pipeline SAM image encoder: auto, onnx, torch")
    ap.add_argument("--clip-sizes", default=None, metavar="S,S,...",
                    help="only time the preset's CLIP mapper (encode_image) at these input sizes")
    args = ap.parse_args(argv)

    import torch

    from zsas_gui.core.engine.cache import DiskCache
    from zsas_gui.core.engine.pipeline import Pipeline
    from zsas_gui.core.engine.presets import get_preset
    from zsas_gui.core.types import MethodParams

    if args.threads:
        torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    if args.clip_sizes:
        return time_clip_sizes(preset, [int(x) for x in args.clip_sizes.split(",")])
    t0 = time.perf_counter()
    clip, sam = preset_bundles(preset)
    print(f"preset: {preset.name}: CLIP {preset.clip_arg}, SAM {preset.sam}; random weights; image "
          f"{HW[1]}x{HW[0]}; {torch.get_num_threads()} threads; fp32 CPU")
    print(f"model_build_s: {time.perf_counter() - t0:.2f}")
    cache_dir = Path(tempfile.mkdtemp(prefix="zsas-bench-cache-"))
    params = MethodParams()

    def pipeline() -> Pipeline:
        return Pipeline(clip, sam, disk_cache=DiskCache(cache_dir), decoder=args.decoder, encoder=args.encoder)

    pipe = pipeline()
    t0 = time.perf_counter()
    pipe.mapper.text_features(pipe.text_prompts)
    print(f"text_features_s: {time.perf_counter() - t0:.2f}   (once per prompt set, cached)")
    t0 = time.perf_counter()
    backend = pipe.decoder_backend
    print(f"decoder_setup_s: {time.perf_counter() - t0:.2f}   ({backend} decoder, once per model)")
    t0 = time.perf_counter()
    encoder = "onnx" if getattr(pipe.backend, "image_encoder", lambda: None)() is not None else "torch"
    print(f"encoder_setup_s: {time.perf_counter() - t0:.2f}   ({encoder} SAM image encoder, once per model)")
    pipe.run("warm-up", test_image(999), params)          # first-call allocations, not an image cost

    first, first_cpu = [], []
    parts = {"clip_ms": [], "sam_ms": [], "anomaly_ms": [], "ppg_ms": [], "refine_ms": []}
    with torch.inference_mode():
        for i in range(args.images):
            image = test_image(i)
            t0, c0 = time.perf_counter(), time.process_time()
            result = pipe.run(f"img{i}", image, params)
            first.append(time.perf_counter() - t0)
            first_cpu.append(time.process_time() - c0)
            for k, v in result.provenance["timings_ms"].items():
                if k in parts:
                    parts[k].append(v)
        nxt, nxt_cpu = [], []
        for i in range(args.images):
            image = test_image(i)
            fresh = pipeline()                                 # empty memory caches
            fresh.mapper.text_features(fresh.text_prompts)     # per session, as in the app
            fresh.decoder_backend
            t0, c0 = time.perf_counter(), time.process_time()
            feats = fresh.features(f"img{i}", image)
            ppg = fresh.propose(feats, params)
            fresh.refine(feats, ppg.prompts, params, ppg.gated)
            nxt.append((time.perf_counter() - t0) * 1e3)
            nxt_cpu.append((time.process_time() - c0) * 1e3)
            assert fresh.encoder_calls == {"clip": 0, "sam": 0}, "features did not come from the disk cache"

    name = "fast" if preset.name == "fast" else preset.name
    print(f"{name}_first_result_s: {statistics.median(first):.2f}")
    for k, v in parts.items():
        if v:
            print(f"  {k}: {statistics.median(v):.0f}")
    if args.next_images > 1:
        from bench_gui_next import measure

        app = measure(preset.name, args.next_images, HW)
        print(f"next_image_ms: {app.pop('next_image_ms'):.1f}   (the app: precomputed folder, next image "
              "selected -> heatmap, points and mask shown)")
        for k, v in app.items():
            print(f"  {k}: {v:.1f}" if isinstance(v, float) else f"  {k}: {v}")
    print(f"next_image_compute_ms: {statistics.median(nxt):.0f}   (nothing computed ahead: disk cache -> map, "
          "points, mask in a fresh Pipeline)")
    if torch.get_num_threads() == 1:   # CPU time of one thread: the wall time on an idle core
        print(f"cpu_time (1 thread, immune to other load): first_result_s {statistics.median(first_cpu):.2f}, "
              f"next_image_compute_ms {statistics.median(nxt_cpu):.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
