"""The cached pipeline: encoders run once per image; edits only run the decoder."""

import numpy as np
from synthetic import blob_image

from zsas_gui.core.engine.cache import ByteLRU, DiskCache
from zsas_gui.core.engine.events import StageDone, drive
from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.types import MethodParams, Prompts, TextPrompts


def test_refinement_reuses_cached_embedding(tiny_pipeline):
    image = blob_image((80, 120), [(30, 40)])
    params = MethodParams()
    first = tiny_pipeline.run("a", image, params)
    assert tiny_pipeline.encoder_calls == {"clip": 1, "sam": 1}
    feats = tiny_pipeline.features("a", image)
    for tau in (0.3, 0.6, 0.8):                      # parameter edits
        tiny_pipeline.refine(feats, tiny_pipeline.propose(feats, params.replace(tau=tau)).prompts, params)
    edited = Prompts(np.vstack([first.prompts.points, [[100, 70]]]),
                     np.append(first.prompts.labels, 0))   # a point edit
    tiny_pipeline.run("a", image, params, prompts=edited)
    assert tiny_pipeline.encoder_calls == {"clip": 1, "sam": 1}
    tiny_pipeline.run("b", image[:, ::-1].copy(), params)   # another image encodes once more
    assert tiny_pipeline.encoder_calls == {"clip": 2, "sam": 2}


def test_text_prompt_change_recomputes_map_without_reencoding(tiny_pipeline):
    image = blob_image((64, 64), [(20, 20)])
    a = tiny_pipeline.features("x", image, TextPrompts(object_name="tile"))
    b = tiny_pipeline.features("x", image, TextPrompts(object_name="screw"))
    assert tiny_pipeline.encoder_calls == {"clip": 1, "sam": 1}
    assert a.text_key != b.text_key
    assert not np.array_equal(a.anomaly.anomaly_map, b.anomaly.anomaly_map)


def test_result_shapes_and_provenance(tiny_pipeline):
    image = blob_image((70, 90), [(60, 20)])
    r = tiny_pipeline.run(None, image, MethodParams(k_pos=2), TextPrompts(object_name="tile"))
    assert r.anomaly.anomaly_map.shape == (70, 90) and r.anomaly.anomaly_map.dtype == np.float32
    assert r.pred_mask.shape == (70, 90) and r.pred_mask.dtype == bool
    assert r.score_map.shape == (70, 90) and r.score_map.dtype == np.float32
    assert 1 <= r.prompts.n_pos <= 2
    p = r.provenance
    assert p["models"]["clip"].startswith("random-test:") and p["models"]["sam"].startswith("random-test:")
    assert p["params"]["k_pos"] == 2 and p["text_prompts"]["object_name"] == "tile"
    assert {"clip_ms", "sam_ms", "refine_ms"} <= set(p["timings_ms"])


def test_gate_predicts_normal(tiny_pipeline):
    image = blob_image((64, 64), [(20, 20)])
    r = tiny_pipeline.run("g", image, MethodParams(gate=1.0))
    assert r.gated and len(r.prompts) == 0 and not r.pred_mask.any() and r.stages == ()


def test_iter_features_yields_cancellation_points(tiny_pipeline):
    image = blob_image((64, 64), [(20, 20)])
    gen = tiny_pipeline.iter_features("c", image)
    assert next(gen) == "clip"                       # about to encode with CLIP
    assert next(gen) == "sam"                        # CLIP done, about to encode with SAM
    gen.close()                                      # cancelled before SAM ran
    assert tiny_pipeline.encoder_calls == {"clip": 1, "sam": 0}
    steps = []
    gen = tiny_pipeline.iter_features("c", image)
    try:
        while True:
            steps.append(next(gen))
    except StopIteration:
        pass
    assert steps == ["sam"]                          # CLIP tokens came from the memory cache


def test_iter_run_yields_each_step_and_builds_complete_provenance(tiny_pipeline):
    image = blob_image((64, 80), [(30, 40)])
    text = TextPrompts(object_name="tile")
    gen = tiny_pipeline.iter_run("r", image, MethodParams(), text)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            trace = stop.value
            break
    kinds = [type(e).__name__ for e in events]
    assert kinds[:4] == ["Encoding", "Encoding", "FeaturesReady", "PointsReady"]
    assert [e.step for e in events[:2]] == ["clip", "sam"]
    stages = [e.stage for e in events if isinstance(e, StageDone)]
    assert kinds[4:] == ["StageDone"] * len(stages) and [s.index for s in stages] == [1, 2, 3]
    assert trace.result.stages == tuple(stages) and trace.ppg is events[3].ppg
    # the provenance is complete when the result is built: no caller adds the text prompts later
    again = tiny_pipeline.refine(trace.features, trace.result.prompts, MethodParams())
    assert again.provenance["text_prompts"] == text.to_dict() == trace.result.provenance["text_prompts"]
    only = drive(tiny_pipeline.iter_run("r", image, MethodParams(), text, features_only=True))
    assert only.result is None and only.features.anomaly is trace.features.anomaly   # cached


def test_user_points_with_ppg_for_display(tiny_pipeline):
    image = blob_image((64, 80), [(30, 40)])
    pts = Prompts(np.array([[40.0, 30.0]], np.float32), np.array([1]))
    plain = tiny_pipeline.run_traced("u", image, MethodParams(), prompts=pts)
    shown = drive(tiny_pipeline.iter_run("u", image, MethodParams(), prompts=pts, ppg_for_display=True))
    assert plain.ppg is None and shown.ppg is not None
    assert shown.result.prompts is pts and np.array_equal(shown.result.pred_mask, plain.result.pred_mask)


def test_per_component_runs_one_cascade_per_region(tiny_bundles):
    clip, sam = tiny_bundles
    pipe = Pipeline(clip, sam)
    image = blob_image((64, 160), [(20, 30), (140, 30)])
    feats = pipe.features("pc", image)
    # replace the (random-model) map by two clear separate blobs so the components are known
    S = np.zeros((64, 160), np.float32)
    S[25:35, 15:25] = 1.0
    S[25:35, 135:145] = 0.9
    feats.anomaly = type(feats.anomaly)(S, 0.9)
    params = MethodParams(per_component=True, k_pos=1, k_neg=1, d_min_1024=0, min_area_frac=0.0)
    ppg = pipe.propose(feats, params)
    assert ppg.prompts.n_pos == 2
    result = pipe.refine(feats, ppg.prompts, params)
    assert {s.component for s in result.stages} == {0, 1}


def test_disk_cache_hit_and_corrupt_file_recomputed(tiny_bundles, tmp_path):
    clip, sam = tiny_bundles
    image = blob_image((64, 64), [(20, 20)])
    first = Pipeline(clip, sam, disk_cache=DiskCache(tmp_path))
    f1 = first.features("k", image)
    second = Pipeline(clip, sam, disk_cache=DiskCache(tmp_path))
    f2 = second.features("k", image)
    assert second.encoder_calls == {"clip": 0, "sam": 0}
    np.testing.assert_allclose(f1.anomaly.anomaly_map, f2.anomaly.anomaly_map, rtol=1e-6)
    np.testing.assert_array_equal(f1.sam.features.numpy(), f2.sam.features.numpy())
    for f in tmp_path.glob("*/*.npz"):
        f.write_bytes(b"garbage")
    third = Pipeline(clip, sam, disk_cache=DiskCache(tmp_path))
    third.features("k", image)
    assert third.encoder_calls == {"clip": 1, "sam": 1} and third.disk_cache.corrupt == 2


def test_byte_lru_evicts_least_recent():
    lru = ByteLRU(10, size_of=len)
    lru.put("a", "xxxx")
    lru.put("b", "xxxx")
    assert lru.get("a") == "xxxx"
    lru.put("c", "xxxx")                             # evicts b (least recently used)
    assert "b" not in lru and "a" in lru and lru.nbytes == 8
    lru.put("big", "x" * 11)                         # larger than the budget: not kept
    assert "big" not in lru


def test_disk_cache_is_size_bounded(tmp_path):
    cache = DiskCache(tmp_path, max_bytes=3000)
    for i in range(5):
        cache.save(DiskCache.key(str(i)), {"a": np.zeros(200, np.float32)})
    assert cache.nbytes <= 3000
    assert cache.load(DiskCache.key("4")) is not None
