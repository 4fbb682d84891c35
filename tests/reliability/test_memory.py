"""Memory under load: the pipeline's in-memory caches stay within their byte budget however many
images pass, and a long `zsas label` run keeps no per-image Python objects alive.
(Resident memory at images 50 and 500 is measured by benchmarks/bench_soak.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image
from synthetic import blob_image

from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.types import MethodParams, TextPrompts


@pytest.mark.parametrize("budget", [150_000, 400_000])
def test_pipeline_caches_stay_within_their_byte_budget(tiny_bundles, budget):
    clip, sam = tiny_bundles
    pipe = Pipeline(clip, sam, cache_bytes=budget)
    params = MethodParams(k_pos=1, k_neg=1)
    peak = 0
    for i in range(30):
        image = blob_image((64 + 2 * i, 96), [(20 + i, 30)], seed=i)
        pipe.run(f"img{i}", image, params, TextPrompts(object_name=("tile", "screw")[i % 2]))
        peak = max(peak, pipe.cache_bytes)
        assert pipe.cache_bytes <= budget, f"image {i}: {pipe.cache_bytes} bytes cached > {budget}"
    assert peak > budget // 3, "the budget was never approached: the test proves nothing"
    calls = dict(pipe.encoder_calls)
    pipe.run("img29", image, params, TextPrompts(object_name="screw"))   # most recent: still cached
    assert pipe.encoder_calls == calls


_LABEL_PROBE = """
import gc, sys, tracemalloc
from zsas_gui.cli import main
from zsas_gui.state.project import Project
samples, real_save = [], Project.save
def save(self, rec, **kw):
    real_save(self, rec, **kw)
    gc.collect()        # live objects only: garbage of a one-time step (the decoder's export) waits for a collection
    samples.append(tracemalloc.get_traced_memory()[0])
Project.save = save
tracemalloc.start()
rc = main(["label", sys.argv[1], "--clip", sys.argv[2], "--sam", sys.argv[3], "--device", "cpu"])
print(rc, len(samples), samples[44] - samples[14])
"""


@pytest.mark.slow
def test_label_run_keeps_no_per_image_python_objects(tmp_path, tiny_models):
    """Traced Python/numpy allocations between image 15 and image 45 of one `zsas label` run
    grow by less than one image's worth of results (an image's masks, maps and record).
    Runs in a fresh interpreter: what earlier tests left in module-level caches must not count.
    Each sample follows a full garbage collection: cyclic garbage left by a one-time step (the
    decoder's ONNX export) is freed whenever the collector runs, which moved the growth in or
    out of the window by ~100 KB from run to run."""
    clip, sam = tiny_models
    src = tmp_path / "in"
    src.mkdir()
    for i in range(45):
        Image.fromarray(blob_image((64, 80), [(10 + i, 30)], seed=i)).save(src / f"{i:03d}.png")
    out = subprocess.run([sys.executable, "-c", _LABEL_PROBE, str(src), str(clip), str(sam)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    rc, n_saves, growth = (int(v) for v in out.stdout.split()[-3:])
    assert rc == 0 and n_saves == 45
    one_image = 64 * 80 * (4 * 4 + 3)                  # four float32 maps and three masks, roughly
    assert growth < one_image, f"{growth} bytes kept over 30 images"
