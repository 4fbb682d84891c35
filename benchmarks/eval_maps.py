"""Heatmap accuracy of the folder maps on real defects (ALGORITHM.md §1b), every variant in one
run on the same features: pixel AUROC, AP, F1-max and AUPRO of the raw map (the ``heatmap``
predictor of ``zsas eval``) over all test images of an MVTec-layout category.

Variants: ``mutual`` (radii 1/3/5, 30 % interval, max 64 others) and ``references`` (ROOT/train/good)
with real EfficientNet-Lite0 weights; the same with a seeded random init; and the plain
baseline (one nearest patch: radius 1 only, no interval average). The nearest-patch search runs
in the dtype the mappers pick by default (``--search auto``: bfloat16 where the hardware
multiplies it natively); ``*_f32`` variants force float32 to check that the search dtype does not
change the accuracy. Distances: the backbone's (raw Euclidean for CNN stages, docs/decisions.md
D39), relative to the local spread of normal patches (D40); ``*_no_density`` variants use the
distances as they are, ``*_cosine`` variants compare unit-length features without density (the
default before D39). ``plain`` (one nearest patch, r = 1, no interval) and ``plain_references``
(r = 1) use no density either.

    OMP_NUM_THREADS=1 python benchmarks/eval_maps.py ../shared/data/magnetic_tile [--weights FILE]
        [--size 256] [--depths 3,4] [--square] [--variants mutual,plain,references,random_mutual,...]

Prints ``name: value`` lines (``mutual_pixel_auroc: 0.91`` ...).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from efficientnet_lite0_weights import write_timm_weights


def test_set(root: Path, weights: Path) -> tuple[list, list]:
    """ROOT's test images ((H, W, 3) uint8) and their masks ((H, W) bool, None for good images);
    writes the converted Lite0 weights to ``weights`` on first use."""
    from zsas_gui.core.evaluation import discover
    from zsas_gui.core.io.imageio import load_image, load_mask

    if not weights.exists():
        write_timm_weights(weights)
    items, _ = discover(root, None, None, None, None)
    return ([load_image(i.image) for i in items],
            [load_mask(i.mask) if i.mask is not None else None for i in items])


def pixel_metrics(maps, gts):
    """Pixel AUROC / AP / F1-max / AUPRO of (H, W) maps against masks (None = all normal)."""
    from zsas_gui.core.metrics import PixelCurveAccumulator

    acc = PixelCurveAccumulator()
    for amap, gt in zip(maps, gts, strict=True):
        acc.update(amap, gt if gt is not None else (amap < -1))
    return acc.result()


def main() -> None:
    from zsas_gui.core.io.imageio import find_images, load_image
    from zsas_gui.core.maps.backbones import TimmBackbone
    from zsas_gui.core.maps.mutual import MutualMapper
    from zsas_gui.core.maps.references import ReferenceMapper

    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--weights", type=Path, default=Path("/tmp/zsas_efficientnet_lite0.safetensors"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--square", action="store_true",
                    help="stretch every image to size x size (default: keep the aspect ratio)")
    ap.add_argument("--depths", default=None, help="timm feature stages, e.g. 3,4 (default: the backbone's)")
    ap.add_argument("--variants", default="mutual,plain,references,random_mutual,random_references")
    args = ap.parse_args()
    images, gts = test_set(args.root, args.weights)
    refs = [load_image(p) for p in find_images(args.root / "train" / "good")]
    print(f"images: {len(images)}\nreferences: {len(refs)}", flush=True)
    wanted = args.variants.split(",")
    keep = not args.square
    depths = None if args.depths is None else tuple(int(d) for d in args.depths.split(","))
    backbones = {"real": TimmBackbone("efficientnet_lite0", args.weights, image_size=args.size,
                                      keep_aspect=keep, depths=depths)}
    if any(v.startswith("random") for v in wanted):
        backbones["random"] = TimmBackbone("efficientnet_lite0", "random", image_size=args.size,
                                           keep_aspect=keep, depths=depths)
    feats, ref_feats = {}, {}
    for name, bb in backbones.items():
        t0 = time.perf_counter()
        feats[name] = [bb.extract(x) for x in images]
        ref_feats[name] = [bb.extract(x) for x in refs]
        print(f"{name}_forward_ms_per_image: {(time.perf_counter() - t0) * 1e3 / (len(images) + len(refs)):.1f}",
              flush=True)
    variants = {
        "mutual": ("real", lambda bb: MutualMapper(bb), False),
        "mutual_f32": ("real", lambda bb: MutualMapper(bb, search="float32"), False),
        "plain": ("real", lambda bb: MutualMapper(bb, radii=(1,), fraction=0.0, density=False), False),
        "plain_f32": ("real", lambda bb: MutualMapper(bb, radii=(1,), fraction=0.0, density=False,
                                                      search="float32"), False),
        "mutual_no_density": ("real", lambda bb: MutualMapper(bb, density=False), False),
        "references_no_density": ("real", lambda bb: ReferenceMapper(bb, density=False), True),
        "references_f32": ("real", lambda bb: ReferenceMapper(bb, search="float32"), True),
        "references": ("real", lambda bb: ReferenceMapper(bb), True),
        "plain_references": ("real", lambda bb: ReferenceMapper(bb, radii=(1,), density=False), True),
        "plain_cosine": ("real", lambda bb: MutualMapper(bb, radii=(1,), fraction=0.0, distance="cosine",
                                                         density=False), False),
        "mutual_cosine": ("real", lambda bb: MutualMapper(bb, distance="cosine", density=False), False),
        "references_cosine": ("real", lambda bb: ReferenceMapper(bb, distance="cosine", density=False), True),
        "random_mutual": ("random", lambda bb: MutualMapper(bb), False),
        "random_references": ("random", lambda bb: ReferenceMapper(bb), True),
    }
    for v in wanted:
        which, make, uses_refs = variants[v]
        mapper = make(backbones[which])
        t0 = time.perf_counter()
        mapper.fit(ref_feats[which] if uses_refs else feats[which])
        m = pixel_metrics((mapper.anomaly(f).anomaly_map for f in feats[which]), gts)
        print(f"{v}_seconds: {time.perf_counter() - t0:.1f}\n{v}_search: {mapper.info()['search']}")
        for k in ("auroc", "ap", "f1_max", "aupro"):
            print(f"{v}_pixel_{k}: {getattr(m, k):.4f}", flush=True)


if __name__ == "__main__":
    main()
