"""zsas-gui: zero-shot industrial anomaly segmentation (CLIP heatmap -> PPG points -> cascaded SAM).

Layers (dependencies point down only): ``qt`` -> ``state`` -> ``core``.
Importing this package is cheap: torch, open_clip, segment_anything and Qt are imported lazily.
"""

import os as _os

__version__ = "0.1.0"

#: torch's OpenMP threads sleep at a barrier instead of spinning (unless the user chose): on a CPU
#: shared with other work, spinning threads made patch features 6-20x slower (docs/decisions.md
#: D44, benchmarks/bench_omp_wait.py). Read once, when torch's libgomp loads: so set it here,
#: before any torch import of ours; child processes (ONNX export, Ray workers) inherit it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
