"""Cancellation at every stage: closing (or throwing into) the pipeline's generators at each
``yield`` leaves the caches consistent, and a later run gives exactly the uninterrupted result.
(The lane cancels by closing these generators between steps.)"""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import blob_image

from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.types import MethodParams

IMG_A = blob_image((80, 112), [(30, 40)], seed=1)
IMG_B = blob_image((72, 96), [(60, 20)], seed=2)
PARAMS = MethodParams(k_pos=2, k_neg=2)


@pytest.fixture(scope="module")
def reference(tiny_bundles):
    """Uninterrupted results of a fresh pipeline for both images."""
    clip, sam = tiny_bundles
    pipe = Pipeline(clip, sam)
    return {k: pipe.run(k, img, PARAMS) for k, img in (("a", IMG_A), ("b", IMG_B))}


def _same(result, ref) -> None:
    np.testing.assert_array_equal(result.pred_mask, ref.pred_mask)
    np.testing.assert_allclose(result.anomaly.anomaly_map, ref.anomaly.anomaly_map, rtol=1e-6)
    np.testing.assert_array_equal(result.prompts.points, ref.prompts.points)
    assert [(s.index, s.component) for s in result.stages] == [(s.index, s.component) for s in ref.stages]
    for s, r in zip(result.stages, ref.stages):
        np.testing.assert_array_equal(s.mask, r.mask)


def _steps(gen, n: int) -> list:
    """Advance ``gen`` by ``n`` yields; the yielded values."""
    return [next(gen) for _ in range(n)]


@pytest.mark.parametrize("how", ["close", "throw"])
@pytest.mark.parametrize("stop_after", [0, 1, 2])
def test_iter_features_interrupted_at_each_yield(tiny_bundles, reference, stop_after, how):
    clip, sam = tiny_bundles
    pipe = Pipeline(clip, sam)
    gen = pipe.iter_features("a", IMG_A)
    seen = _steps(gen, stop_after)
    assert seen == ["clip", "sam"][:stop_after]
    if how == "close":
        gen.close()
    else:
        with pytest.raises(KeyboardInterrupt):
            gen.throw(KeyboardInterrupt())
    # CLIP runs after the "clip" yield, SAM after the "sam" yield: what ran is cached, nothing else
    ran_clip = stop_after >= 2
    assert pipe.encoder_calls == {"clip": int(ran_clip), "sam": 0}
    assert (pipe.cache_bytes > 0) == ran_clip
    _same(pipe.run("a", IMG_A, PARAMS), reference["a"])
    assert pipe.encoder_calls == {"clip": 1, "sam": 1}       # nothing encoded twice
    _same(pipe.run("b", IMG_B, PARAMS), reference["b"])


@pytest.mark.parametrize("how", ["close", "throw"])
@pytest.mark.parametrize("stop_after", [0, 1, 2, 3])
def test_iter_refine_interrupted_at_each_stage(tiny_bundles, reference, stop_after, how):
    clip, sam = tiny_bundles
    pipe = Pipeline(clip, sam)
    feats = pipe.features("a", IMG_A)
    ppg = pipe.propose(feats, PARAMS)
    assert ppg.prompts.n_pos > 0 and len(reference["a"].stages) == 3
    gen = pipe.iter_refine(feats, ppg.prompts, PARAMS)
    stages = _steps(gen, stop_after)
    assert [s.index for s in stages] == [1, 2, 3][:stop_after]
    if how == "close":
        gen.close()
    else:
        with pytest.raises(KeyboardInterrupt):
            gen.throw(KeyboardInterrupt())
    # another image refined right after the interrupted cascade is not affected by its state
    _same(pipe.run("b", IMG_B, PARAMS), reference["b"])
    _same(pipe.run("a", IMG_A, PARAMS), reference["a"])
    assert pipe.encoder_calls == {"clip": 2, "sam": 2}


def test_every_interleaving_of_two_cancelled_runs(tiny_bundles, reference):
    """Start image A, cancel it at every point while image B runs in between: B and a later A
    are always exact."""
    clip, sam = tiny_bundles
    pipe = Pipeline(clip, sam)
    pipe.features("a", IMG_A)                         # A's features cached, B's not
    for stop_after in range(4):
        feats = pipe.features("a", IMG_A)
        gen = pipe.iter_refine(feats, pipe.propose(feats, PARAMS).prompts, PARAMS)
        _steps(gen, stop_after)
        b_gen = pipe.iter_features("b", IMG_B)
        next(b_gen, None)
        b_gen.close()                                 # B cancelled too, before its encoders
        gen.close()
        _same(pipe.run("b", IMG_B, PARAMS), reference["b"])
        _same(pipe.run("a", IMG_A, PARAMS), reference["a"])
    assert pipe.encoder_calls == {"clip": 2, "sam": 2}
