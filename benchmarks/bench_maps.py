"""Speed and memory of the folder maps (ALGORITHM.md §1b), random-weight backbones (timings do
not depend on the weights).

Prints, per backbone (``vitb16`` = the CLIP ViT-B-16 image tower at 224 px, ``effl0`` = timm
EfficientNet-Lite0 at 256 px):

- ``mutual_ms_per_image_50_<bb>`` / ``mutual_ms_per_image_200_<bb>``: scoring time of the folder
  pass per image for a folder of 50 / 200 images (max_others 64), backbone forward excluded;
  the 200 figure is timed over the first ``--sample`` images of the pass (the later images
  reuse more pairs, so this is an upper bound);
- ``forward_ms_per_image_<bb>`` and ``mutual_vs_forward_ratio_<bb>`` (N = 50);
- ``references_ms_per_image_<bb>``: one image against a 20-reference bank;
- ``features_rss_mb_500_<bb>``: peak RSS of a fresh process holding 500 images' patch features
  (float16), with the interpreter and model loaded (``features_mb_500_<bb>``: the features alone;
  ``rss_mb_before_features_<bb>``: the same process before it held them).

    OMP_NUM_THREADS=1 python benchmarks/bench_maps.py [--sample 20] [--backbones vitb16,effl0]
        [--search auto] [--distance auto] [--no-density]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, random_clip_bundle


def make_backbone(name: str):
    from zsas_gui.core.maps.backbones import ClipTowerBackbone, TimmBackbone

    if name == "vitb16":
        return ClipTowerBackbone(random_clip_bundle("ViT-B-16-quickgelu", 224))
    return TimmBackbone("efficientnet_lite0", "random", image_size=256)


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(60, 200, (256, 256, 3), dtype=np.uint8) for _ in range(n)]


def features(bb, n: int) -> tuple[list, float]:
    """Patch features of ``n`` synthetic images and the mean forward time in ms."""
    out = []
    t0 = time.perf_counter()
    for img in images(n):
        out.append(bb.extract(img))
    return out, (time.perf_counter() - t0) * 1e3 / n


def scoring_ms(feats, sample: int | None = None, search: str = "auto", distance: str = "cosine",
               density: bool = True) -> float:
    """Mean ms per image of the mutual folder pass (over the first ``sample`` images)."""
    import torch

    from zsas_gui.core.maps.mutual import iter_score_folder
    from zsas_gui.core.maps.patch_features import search_dtype

    dtype = search_dtype() if search == "auto" else getattr(torch, search)
    t0 = time.perf_counter()
    done = 0
    for done in iter_score_folder(feats, search=dtype, distance=distance, density=density):
        if sample is not None and done >= sample:
            break
    return (time.perf_counter() - t0) * 1e3 / done


def _rss_now_mb() -> float:
    """Current resident set size of this process (Linux /proc), MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def rss_child(name: str) -> None:
    """(in a fresh process) hold 500 images' features; print their bytes and the peak RSS."""
    bb = make_backbone(name)
    base, _ = features(bb, 4)
    emit(f"rss_mb_before_features_{name}", _rss_now_mb())
    held = [type(f)(layers=tuple(t.clone() for t in f.layers), grid=f.grid, hw=f.hw,
                    image_size=f.image_size) for i in range(125) for f in base]
    emit(f"features_mb_500_{name}", sum(f.nbytes for f in held) / 2**20)
    emit(f"features_rss_mb_500_{name}", _peak_rss_mb())


def _peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux ``VmHWM``), MB. Not ``ru_maxrss``: Linux
    carries that over from the parent into a forked child, so a child started by a parent that
    held more memory reported the parent's peak (the effl0 figure after the vitb16 one)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--backbones", default="vitb16,effl0")
    ap.add_argument("--search", default="auto", choices=("auto", "float32", "bfloat16"),
                    help="dtype of the nearest-patch products (default: the mappers' auto)")
    ap.add_argument("--distance", default="auto", choices=("auto", "cosine", "euclidean"),
                    help="patch distance (default: the backbone's, D39: Euclidean for Lite0)")
    ap.add_argument("--no-density", action="store_true", help="plain distances (D40 off)")
    ap.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    from zsas_gui.core.maps.patch_features import preferred_distance
    from zsas_gui.core.maps.references import ReferenceMapper

    with open("/proc/loadavg") as f:
        print(f"uptime: {f.read().strip()}")
    for name in args.backbones.split(","):
        bb = make_backbone(name)
        distance = preferred_distance(bb) if args.distance == "auto" else args.distance
        print(f"distance_{name}: {distance}")
        feats, forward_ms = features(bb, 50)
        emit(f"forward_ms_per_image_{name}", forward_ms)
        density = not args.no_density
        ms50 = scoring_ms(feats, search=args.search, distance=distance, density=density)
        emit(f"mutual_ms_per_image_50_{name}", ms50)
        emit(f"mutual_vs_forward_ratio_{name}", ms50 / forward_ms)
        more, _ = features(bb, 150)
        emit(f"mutual_ms_per_image_200_{name}", scoring_ms(feats + more, args.sample, args.search, distance, density))
        refs = ReferenceMapper(bb, search=args.search, distance=distance, density=density)
        refs.fit(feats[:20])
        t0 = time.perf_counter()
        for f in feats[20:40]:
            refs.score_grid(f)
        emit(f"references_ms_per_image_{name}", (time.perf_counter() - t0) * 1e3 / 20)
        del feats, more, refs
        out = subprocess.run([sys.executable, __file__, "--rss-child", name], capture_output=True,
                             text=True, check=True)
        print(out.stdout, end="", flush=True)


if __name__ == "__main__":
    main()
