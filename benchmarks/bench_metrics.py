"""Throughput and memory of the streaming metrics (PixelCurveAccumulator) on synthetic data.

    python benchmarks/bench_metrics.py [--images 100] [--size 1024] [--bins 65536]

Prints ``name: value`` lines:

- ``metrics_mpix_per_s``: pixel AUROC/AP/F1-max, streaming path (update of every image + result);
- ``aupro_mpix_per_s``: the same with AUPRO accumulated too (all four metrics, one pass);
- ``peak_mem_mb``: extra memory the metric code allocates inside ``update`` beyond its inputs,
  measured with tracemalloc (numpy reports its buffers to it) in a separate pass over a few images;
- ``state_mb``: the accumulator's own histograms;
- ``exact_*``: the exact (sorting) path on the first ``--exact-images`` images, and the binned
  result's actual error and stated bound against it on those images.

Score maps are smooth noise (float32, about [0, 1.5]) plus a signal inside random elliptical
defects; masks are bool. Data generation is not timed.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def make_image(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic pair: (size, size) float32 score map and (size, size) bool mask."""
    import cv2

    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(0, 4)):       # 0..3 defects; some images are all-normal
        centre = tuple(int(v) for v in rng.integers(0, size, 2))
        axes = tuple(int(v) for v in rng.integers(size // 100 + 1, size // 12, 2))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    noise = cv2.resize(rng.random((size // 16, size // 16), np.float32), (size, size),
                       interpolation=cv2.INTER_CUBIC)
    fine = rng.random((size, size), np.float32) * np.float32(0.2)
    score = noise + fine + mask.astype(np.float32) * np.float32(rng.uniform(0.1, 0.5))
    return score, mask.astype(bool)


def timed_pass(n_images: int, size: int, bins: int, aupro: bool):
    from zsas_gui.core.metrics import PixelCurveAccumulator

    acc = PixelCurveAccumulator(bins=bins, aupro=aupro)
    elapsed = 0.0
    for i in range(n_images):
        score, mask = make_image(i, size)
        t0 = time.perf_counter()
        acc.update(score, mask)
        elapsed += time.perf_counter() - t0
    t0 = time.perf_counter()
    result = acc.result()
    elapsed += time.perf_counter() - t0
    return acc, result, elapsed


def peak_update_memory(size: int, bins: int, n: int = 3) -> float:
    """Largest tracemalloc peak inside update() above the memory held before it (MiB)."""
    from zsas_gui.core.metrics import PixelCurveAccumulator

    acc = PixelCurveAccumulator(bins=bins, aupro=True)
    pairs = [make_image(10_000 + i, size) for i in range(n)]
    tracemalloc.start()
    worst = 0
    for score, mask in pairs:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        acc.update(score, mask)
        worst = max(worst, tracemalloc.get_traced_memory()[1] - base)
    tracemalloc.stop()
    return worst / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--bins", type=int, default=65536)
    ap.add_argument("--exact-images", type=int, default=8)
    args = ap.parse_args()
    from zsas_gui.core.metrics import PixelCurveAccumulator, pixel_metrics

    mpix = args.images * args.size ** 2 / 1e6
    acc, _, t_curves = timed_pass(args.images, args.size, args.bins, aupro=False)
    acc, result, t_all = timed_pass(args.images, args.size, args.bins, aupro=True)
    print(f"images: {args.images}")
    print(f"mpix: {mpix:.1f}")
    print(f"bins: {args.bins}")
    print(f"metrics_mpix_per_s: {mpix / t_curves:.1f}")
    print(f"aupro_mpix_per_s: {mpix / t_all:.1f}")
    print(f"peak_mem_mb: {peak_update_memory(args.size, args.bins):.1f}")
    state = sum(a.nbytes for a in (acc._pos, acc._neg, acc._min, acc._max, acc._prow))
    print(f"state_mb: {state / 2 ** 20:.1f}")
    print(f"bin_width: {acc.bin_width:.3g}")
    for k in ("auroc", "ap", "f1_max", "aupro"):
        print(f"{k}: {getattr(result, k):.6f}")
    for k in ("auroc", "ap", "f1", "aupro"):
        print(f"{k}_bound: {getattr(result, k + '_bound'):.2e}")

    n = min(args.exact_images, args.images)
    if n:
        pairs = [make_image(i, args.size) for i in range(n)]
        t0 = time.perf_counter()
        exact = pixel_metrics([p[0] for p in pairs], [p[1] for p in pairs])
        t_exact = time.perf_counter() - t0
        sub = PixelCurveAccumulator(bins=args.bins)
        for score, mask in pairs:
            sub.update(score, mask)
        binned = sub.result()
        print(f"exact_images: {n}")
        print(f"exact_mpix_per_s: {n * args.size ** 2 / 1e6 / t_exact:.1f}")
        for k in ("auroc", "ap", "aupro"):
            err = abs(getattr(binned, k) - getattr(exact, k))
            print(f"exact_{k}_abs_err: {err:.2e}")
            print(f"exact_{k}_bound: {getattr(binned, k + '_bound'):.2e}")
        print(f"exact_f1_max_abs_err: {exact.f1_max - binned.f1_max:.2e}")
        print(f"exact_f1_max_bound: {binned.f1_bound:.2e}")


if __name__ == "__main__":
    main()
