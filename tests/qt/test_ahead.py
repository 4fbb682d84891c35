"""Work done ahead (qt/ahead.py): moving to a precomputed image applies the automatic result the
lane computed ahead at once, equal to a fresh ``pipe.run``, with no encoder, PPG or decoder call
for it; a change of parameters, text prompts or models makes that result unusable; the cache's
bounds."""

import weakref

import numpy as np
import pytest

from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.types import MethodParams, TextPrompts
from zsas_gui.qt.ahead import AheadCache

#: Limit of a wait for a state (ms), as tests/qt/conftest.py's ``wait_idle``: a guard against a
#: hang only (a 20 s limit failed on a loaded 2-core machine, issue 14 item 8).
STATE_TIMEOUT_MS = 300_000


class CountingPipeline(Pipeline):
    """The real pipeline; counts PPG runs, cascades and decoder bindings per image key."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls: list[tuple[str, str]] = []      # (what, image key), appended by the lane thread

    def propose(self, feats, params):
        self.calls.append(("propose", feats.image_key))
        return super().propose(feats, params)

    def iter_refine(self, feats, prompts, params, gated=False):
        self.calls.append(("cascade", feats.image_key))
        return super().iter_refine(feats, prompts, params, gated)

    def _decoder_for(self, feats):
        self.calls.append(("decoder", feats.image_key))
        return super()._decoder_for(feats)


@pytest.fixture
def pipe(tiny_bundles):
    clip, sam = tiny_bundles
    return CountingPipeline(clip, sam)


def _shown(w, rel):
    doc = w.controller.doc
    return doc is not None and doc.image_id == rel and doc.mask is not None and not doc.needs_refine \
        and w.controller.heatmap is not None


def _precomputed_window(make_window, image_folder, pipe, qtbot, wait_idle):
    w = make_window(pipe, image_folder)
    rels = w.file_list.ordered()
    qtbot.waitUntil(lambda: _shown(w, rels[0]), timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    with qtbot.waitSignal(w.lane.precompute_finished, timeout=STATE_TIMEOUT_MS):
        assert w.precompute.start()
    wait_idle(w)
    return w, rels


def test_moving_to_a_precomputed_image_applies_its_result_at_once_equal_to_a_fresh_run(
        make_window, image_folder, pipe, qtbot, wait_idle):
    from zsas_gui.core.io.imageio import load_image

    w, rels = _precomputed_window(make_window, image_folder, pipe, qtbot, wait_idle)
    c = w.controller
    rel = rels[-1]
    encoders, n_calls, hits = dict(pipe.encoder_calls), len(pipe.calls), c.ahead_hits
    w.file_list.select(rel)                     # no event processed: nothing came from the lane
    assert _shown(w, rel) and c.ahead_hits == hits + 1
    key = c.image_key
    wait_idle(w)                                # the next images' prefetch has run meanwhile
    assert pipe.encoder_calls == encoders
    assert [call for call in pipe.calls[n_calls:] if call[1] == key] == []   # no PPG, cascade, decoder
    assert w.canvas.point_items() and len(w.canvas.point_items()) == len(c.doc.prompts)
    s = c.doc.state
    fresh = pipe.run(key, load_image(image_folder / rel), s.params, s.text_prompts)
    assert np.array_equal(c.doc.mask, fresh.pred_mask)
    assert np.array_equal(c.doc.prompts.points, fresh.prompts.points)
    assert np.array_equal(c.doc.prompts.labels, fresh.prompts.labels)
    assert np.array_equal(c.heatmap, fresh.anomaly.normalized)
    assert c.doc.image_score == pytest.approx(fresh.anomaly.image_score)


def test_changed_parameters_never_use_a_result_computed_for_the_old_ones(
        make_window, image_folder, pipe, qtbot, wait_idle):
    from zsas_gui.core.io.imageio import load_image

    w, rels = _precomputed_window(make_window, image_folder, pipe, qtbot, wait_idle)
    c = w.controller
    new = c.doc.state.params.replace(tau=0.62, k_pos=2)
    c.set_params(new, "tau")                    # becomes the defaults of never-edited images
    qtbot.waitUntil(lambda: not c.doc.needs_refine, timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    rel = rels[-1]                              # precomputed with the old parameters only
    hits, n_calls = c.ahead_hits, len(pipe.calls)
    w.file_list.select(rel)
    assert c.ahead_hits == hits and c.doc.state.params == new
    qtbot.waitUntil(lambda: _shown(w, rel), timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    key = c.image_key
    assert ("cascade", key) in pipe.calls[n_calls:]     # computed by the lane for the new ones
    fresh = pipe.run(key, load_image(image_folder / rel), new, c.doc.state.text_prompts)
    assert np.array_equal(c.doc.mask, fresh.pred_mask)


def test_cache_keys_bounds_and_models(tiny_bundles):
    clip, sam = tiny_bundles
    p1, p2 = Pipeline(clip, sam), Pipeline(clip, sam)
    params, text = MethodParams(), TextPrompts()
    cache = AheadCache(result_bytes=3 << 20, images=2)

    class Obj:
        pass

    def entry(hw=(64, 64)):
        ppg, res = Obj(), Obj()
        ppg.region = ppg.ring = np.zeros(hw, bool)
        ppg.similarity, ppg.S = None, np.zeros(hw, np.float32)
        res.pred_mask, res.score_map, res.stages = np.zeros(hw, bool), np.zeros(hw, np.float32), ()
        return ppg, res

    cache.put_result(p1, "k", params, text, *entry())
    assert cache.result(p1, "k", params, text) is not None
    assert cache.result(p2, "k", params, text) is None                      # other models
    assert cache.result(p1, "k", params.replace(tau=0.3), text) is None      # other parameters
    assert cache.result(p1, "k", params, TextPrompts(object_name="bottle")) is None
    assert cache.result(p1, "k2", params, text) is None                     # other image (file)
    for i in range(40):                                                     # ~0.1 MB each
        cache.put_result(p1, f"k{i}", params, text, *entry((256, 256)))
    assert 0 < cache.result_bytes <= 3 << 20 and cache.result(p1, "k0", params, text) is None
    assert not cache.has_room                   # a folder precompute stops adding results here
    ref = weakref.ref(p2)
    cache.put_result(p2, "x", params, text, *entry())
    del p2
    assert ref() is None                        # the cache does not keep a pipeline alive
    img = np.zeros((4, 4, 3), np.uint8)
    for i in range(3):
        cache.put_image(f"/a/{i}.png", f"key{i}", img)
    assert cache.image("/a/0.png", "key0") is None                          # evicted (2 kept)
    assert cache.image("/a/2.png", "key2") is img
    assert cache.image("/a/2.png", "key2-changed-file") is None
    cache.clear()
    assert cache.result_bytes == 0 and cache.image("/a/2.png", "key2") is None and cache.has_room
