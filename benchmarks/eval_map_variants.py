"""What each part of the mutual map (ALGORITHM.md §1b) does on real defects: the folder's
nearest-patch distances are computed once per backbone setting, then every variant combines them
differently (which views, the interval, per-view normalisation, blur), so all rows of one setting
come from the same features and the same distances (the backbone's distance, D39, without the
density normalisation of D40: ``eval_maps.py`` has those rows). Heatmap predictor, pixel AUROC /
AP / F1-max / AUPRO over all test images (as ``benchmarks/eval_maps.py``).

    OMP_NUM_THREADS=1 python benchmarks/eval_map_variants.py ../shared/data/magnetic_tile \\
        [--weights FILE] [--settings 256:3,4 384:3,4 256:2,3,4 256:4]

Prints one ``name: auroc ap f1_max aupro`` line per (setting, variant).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_maps import pixel_metrics, test_set

RADII = (1, 3, 5)
#: name -> (depth positions or None = all, radii, interval fraction, per-view normalisation, blur)
VARIANTS = {
    "plain": (None, (1,), 0.0, False, 4.0),
    "mutual": (None, RADII, 0.3, False, 4.0),
    "mutual_view_norm": (None, RADII, 0.3, True, 4.0),
    "mutual_interval10": (None, RADII, 0.1, False, 4.0),
    "mutual_r13": (None, (1, 3), 0.3, False, 4.0),
    "mutual_r1": (None, (1,), 0.3, False, 4.0),
    "mutual_blur9": (None, RADII, 0.3, False, 9.25),   # PatchCore's sigma 4 at 224 px
    "plain_blur9": (None, (1,), 0.0, False, 9.25),
    "mutual_first_depth": ((0,), RADII, 0.3, False, 4.0),
    "mutual_last_depth": ((-1,), RADII, 0.3, False, 4.0),
}


def folder_distances(feats, search, distance):
    """Per image (M, V, P) float32: distance of each patch to its nearest patch in each other
    image, per (depth, r) view (depth-major, radii ``RADII``)."""
    import torch

    from zsas_gui.core.maps.patch_features import aggregated, as_query, best_matches

    views = [aggregated(f, RADII, search, distance) for f in feats]
    out = []
    with torch.inference_mode():
        for i, own in enumerate(views):
            query = [as_query(v) for v in own]
            rows = [torch.stack([best_matches(q, b, [b.shape[0]])[0][:, 0] for q, b in zip(query, views[j], strict=True)])
                    for j in range(len(views)) if j != i]
            out.append(torch.stack(rows))
    return out


def combine(dists, feats, n_depths, depths, radii, fraction, view_norm):
    """(M, V, P) distances -> one (Gh, Gw) score grid per image for one variant."""
    import torch

    pick = [d * len(RADII) + RADII.index(r) for d in (range(n_depths) if depths is None else
                                                      [p % n_depths for p in depths]) for r in radii]
    per_image = []
    for d in dists:
        k = max(1, math.ceil(fraction * d.shape[0]))
        per_image.append(d[:, pick].topk(k, dim=0, largest=False).values.mean(dim=0))   # (V', P)
    if view_norm:    # each view divided by its folder-wide median distance
        median = torch.cat(per_image, dim=1).median(dim=1).values[:, None]
        per_image = [p / median for p in per_image]
    return [p.mean(dim=0).reshape(f.grid).numpy() for p, f in zip(per_image, feats, strict=True)]


def main() -> None:
    from zsas_gui.core.maps.backbones import TimmBackbone
    from zsas_gui.core.maps.mutual import MutualMapper

    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--weights", type=Path, default=Path("/tmp/zsas_efficientnet_lite0.safetensors"))
    ap.add_argument("--settings", nargs="+", default=["256:3,4", "384:3,4", "256:2,3,4", "256:4"],
                    help="SIZE:DEPTHS of the EfficientNet-Lite0 backbone")
    args = ap.parse_args()
    images, gts = test_set(args.root, args.weights)
    for setting in args.settings:
        size, depths = setting.split(":")
        depths = tuple(int(d) for d in depths.split(","))
        bb = TimmBackbone("efficientnet_lite0", args.weights, image_size=int(size), depths=depths)
        mapper = MutualMapper(bb)
        feats = [bb.extract(x) for x in images]
        dists = folder_distances(feats, mapper.search, mapper.distance)
        for name, (pos, radii, fraction, view_norm, blur) in VARIANTS.items():
            if pos is not None and len(depths) == 1:
                continue
            grids = combine(dists, feats, len(depths), pos, radii, fraction, view_norm)
            mapper.blur_sigma_518 = blur
            m = pixel_metrics((mapper.result(g, f.hw, f.frame_hw).anomaly_map
                               for g, f in zip(grids, feats, strict=True)), gts)
            print(f"s{size}_d{'-'.join(map(str, depths))}_{name}: {m.auroc:.4f} {m.ap:.4f} "
                  f"{m.f1_max:.4f} {m.aupro:.4f}", flush=True)


if __name__ == "__main__":
    main()
