"""The app's lane and window run unchanged on SAM 2.1 and HQ-SAM (tiny random models)."""

import pytest

from zsas_gui.core.engine.pipeline import Pipeline


@pytest.fixture(scope="module")
def clip_bundle(tiny_models):
    from zsas_gui.core.models.loading import load_clip

    return load_clip(str(tiny_models[0]), device="cpu")


@pytest.mark.parametrize("name,family", [("tiny-sam2", "sam2"), ("tiny-sam-hq", "sam_hq")])
def test_window_segments_edits_and_prefetches_with_each_backend(name, family, clip_bundle, tiny_models,
                                                                make_window, image_folder, qtbot, wait_idle):
    from zsas_gui.core.models.loading import load_sam

    sam = load_sam(str(tiny_models[0].parent / name), device="cpu")
    pipe = Pipeline(clip_bundle, sam)
    w = make_window(pipe, image_folder)
    c = w.controller
    qtbot.waitUntil(lambda: c.doc.mask is not None, timeout=300_000)     # the automatic result
    wait_idle(w, timeout=300_000)
    assert pipe.backend.name == family and w.lane.counters["prefetched"] == 2
    assert pipe.encoder_calls["sam"] == 3                 # the shown image + two encoded ahead
    h, w_ = c.doc.mask.shape
    c.add_point(w_ // 3, h // 3, True)                    # an edit: the cascade on the cached embedding
    c.submit_now()
    qtbot.waitUntil(lambda: not c.doc.needs_refine, timeout=300_000)
    wait_idle(w, timeout=300_000)
    assert c.doc.mask.shape == (h, w_) and pipe.encoder_calls["sam"] == 3
    rels = w.file_list.ordered()
    w.file_list.select(rels[1])                           # encoded ahead: no encoder call for it
    qtbot.waitUntil(lambda: c.doc.mask is not None and c.doc.image_id == rels[1], timeout=300_000)
    wait_idle(w, timeout=300_000)
    assert pipe.encoder_calls["sam"] == 4                 # only the newly prefetched next image
