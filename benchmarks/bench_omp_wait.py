"""OpenMP's wait policy on a shared CPU: torch's threads spinning at every barrier (libgomp's
default) against sleeping (``OMP_WAIT_POLICY=PASSIVE``, which ``import zsas_gui`` sets unless the
user set it; docs/decisions.md D44).

Each round runs two child processes alternately, the same work in each: EfficientNet-Lite0
(random init: timing only) patch features of N images at 256 px, then a mutual folder pass.
``default``: torch imported before zsas_gui, so libgomp starts with its own policy (it reads the
variable once, when it loads); ``passive``: zsas_gui imported first. Run it on a busy machine
too (e.g. beside two ``yes > /dev/null``): that is where the policies differ.

    python benchmarks/bench_omp_wait.py [--rounds 3] [--images 25]

Prints ``omp_<policy>_extract_s``, ``omp_<policy>_fit_s`` (medians) and
``omp_default_vs_passive_ratio`` (extract + fit), and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
if sys.argv[1] == "default":
    import torch  # noqa: F401  (libgomp loads before zsas_gui can set its policy)
import numpy as np
from zsas_gui.core.maps.backbones import TimmBackbone
from zsas_gui.core.maps.mutual import MutualMapper
rng = np.random.default_rng(0)
images = [rng.integers(0, 255, (200 + 8 * i, 260, 3), dtype=np.uint8) for i in range(int(sys.argv[2]))]
bb = TimmBackbone("efficientnet_lite0", "random", image_size=256)
t0 = time.perf_counter(); feats = [bb.extract(x) for x in images]; t1 = time.perf_counter()
MutualMapper(bb, search="float32").fit(feats); t2 = time.perf_counter()
import os
print(json.dumps({"extract": t1 - t0, "fit": t2 - t1, "policy": os.environ.get("OMP_WAIT_POLICY")}))
"""


def run(policy: str, images: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", CHILD, policy, str(images)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=25)
    args = ap.parse_args()
    print(f"load_average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    got = {"default": [], "passive": []}
    for _ in range(args.rounds):
        for policy, runs in got.items():
            runs.append(run(policy, args.images))
    for policy, runs in got.items():
        for part in ("extract", "fit"):
            print(f"omp_{policy}_{part}_s: {statistics.median(r[part] for r in runs):.2f}")
    total = {p: statistics.median(r["extract"] + r["fit"] for r in runs) for p, runs in got.items()}
    print(f"omp_default_vs_passive_ratio: {total['default'] / total['passive']:.2f}")
    print(f"load_average_after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
