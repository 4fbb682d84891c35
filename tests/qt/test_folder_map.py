"""The "heatmap from" selector (issue 12, item 5): the folder pass on the lane with progress and
cancel, the map in use named in the side panel and the method panel, the choice stored in the
project, marking an image good growing the references, features cached on disk, and the
feature budget of a pass (D34). Real lane threads over the tiny random models."""

from __future__ import annotations

import pytest

from zsas_gui.core.engine.cache import DiskCache
from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.io.imageio import content_hash, find_images, load_image
from zsas_gui.qt import folder_map_job
from zsas_gui.qt.folder_map_job import MapperStore, drawn_subset

STATE_TIMEOUT_MS = 300_000     # a guard against a hang only (tests/qt/conftest.py)


def _choose(w, kind):
    box = w.folder_map.box
    box.combo.setCurrentIndex(box.combo.findData(kind))


def test_this_folder_builds_on_the_lane_with_progress_and_is_named_and_stored(
        make_window, image_folder, cached_pipeline, qtbot, wait_idle):
    w = make_window(cached_pipeline, image_folder)
    rels = w.file_list.ordered()
    qtbot.waitUntil(lambda: w.controller.doc is not None and w.controller.doc.mask is not None,
                    timeout=STATE_TIMEOUT_MS)
    text_mapper = cached_pipeline.mapper
    fm = w.folder_map
    assert fm.box.combo.currentData() == "text"             # a new project starts from the text map
    assert fm.box.combo.itemText(fm.box.combo.findData("mutual")) == f"this folder ({len(rels)} images)"
    assert fm.box.combo.itemText(fm.box.combo.findData("references")) == "good images (3)"   # train/good
    steps = []
    fm.signals.progress.connect(lambda _s, stage, done, total: steps.append((stage, done, total)))
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose(w, "mutual")
        assert fm.box.progress.isVisible() and fm.box.stop.isVisible()
    info = done.args[1]
    assert done.args[2] == "" and info["mapper"] == "mutual" and info["folder_images"] == len(rels)
    assert ("features", len(rels), len(rels)) in steps and ("scoring", len(rels), len(rels)) in steps
    # the file list shows every image's score on the new map (the folder pass ranked them all)
    mapper = cached_pipeline.mapper
    for rel in rels:
        expected = mapper.anomaly(cached_pipeline.image_tokens(None, load_image(image_folder / rel))).image_score
        qtbot.waitUntil(lambda r=rel, e=expected: w.file_list.score_of(r) == pytest.approx(e, abs=1e-3),
                        timeout=STATE_TIMEOUT_MS)
    assert cached_pipeline.mapper is not text_mapper and cached_pipeline.mapper.kind == "mutual"
    assert not fm.box.progress.isVisible()
    assert f"this folder (mutual, {len(rels)} images" in fm.box.in_use.text()
    # the current image's map and automatic result are computed again on the folder map
    w.method_panel.show()
    qtbot.waitUntil(lambda: "this folder (mutual" in w.method_panel.source.text(), timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    assert not w.controller.doc.needs_refine and w.controller.heatmap is not None
    w.close()
    # the choice is a project default: reopening the folder builds the same map
    again = Pipeline(cached_pipeline.clip, cached_pipeline.sam, disk_cache=cached_pipeline.disk_cache)
    w2 = make_window(again)
    with qtbot.waitSignal(w2.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS) as done2:
        assert w2.open_folder(image_folder)
    assert w2.folder_map.box.combo.currentData() == "mutual" and done2.args[1]["mapper"] == "mutual"
    wait_idle(w2)


def test_a_cancelled_pass_keeps_the_map_in_use_and_says_so(make_window, image_folder, cached_pipeline,
                                                           counted, qtbot, wait_idle):
    w = make_window(cached_pipeline, image_folder)
    qtbot.waitUntil(lambda: w.controller.doc is not None and w.controller.doc.mask is not None,
                    timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    text_mapper, fm = cached_pipeline.mapper, w.folder_map
    counted["gate"].clear()                                  # the first image's encoding waits
    _choose(w, "mutual")
    qtbot.waitUntil(counted["started"].is_set, timeout=STATE_TIMEOUT_MS)
    # the window is free while the lane is held: an edit goes through at once
    w.params_panel.tau.setValue(0.6)
    assert w.controller.doc.state.params.tau == pytest.approx(0.6)
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        fm.box.stop.click()
        counted["gate"].set()
    assert done.args[1] is None and done.args[2] == "cancelled"
    assert cached_pipeline.mapper is text_mapper and fm.info is None
    assert "text prompts" in fm.box.in_use.text() and "cancelled" in fm.box.in_use.text()
    assert fm.box.again.isVisible() and not fm.box.progress.isVisible()
    wait_idle(w)
    assert cached_pipeline.mapper is text_mapper             # nothing half-installed later either
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as again:
        fm.box.again.click()                                 # build it after all
    assert again.args[1]["mapper"] == "mutual" and "cancelled" not in fm.box.in_use.text()
    wait_idle(w)


def test_a_request_goes_first_and_the_pass_goes_on_where_it_was(make_window, image_folder, cached_pipeline,
                                                                counted, qtbot, wait_idle):
    w = make_window(cached_pipeline, image_folder)
    rels = w.file_list.ordered()
    qtbot.waitUntil(lambda: w.controller.doc is not None and w.controller.doc.mask is not None,
                    timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    fm = w.folder_map
    counted["gate"].clear()
    _choose(w, "mutual")
    qtbot.waitUntil(counted["started"].is_set, timeout=STATE_TIMEOUT_MS)
    results = []
    w.lane.result_ready.connect(lambda req, _r: results.append(req.image_id))
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        w.file_list.select(rels[3])                          # a request while the pass holds the lane
        counted["gate"].set()
    assert done.args[1]["mapper"] == "mutual"
    assert results and results[0] == rels[3]                 # it ran before the pass ended
    assert counted["calls"] == len(rels)                     # each image encoded once: nothing redone
    wait_idle(w)


def test_marking_an_image_good_grows_the_references(make_window, image_folder, cached_pipeline, qtbot,
                                                     wait_idle):
    w = make_window(cached_pipeline, image_folder)
    fm = w.folder_map
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose(w, "references")
    assert done.args[1]["references"] == 3                   # train/good
    w.actions["auto_advance"].setChecked(False)
    rel = "test/hole/000.png"
    w.file_list.select(rel)
    qtbot.waitUntil(lambda: w.controller.doc.image_id == rel and w.controller.doc.mask is not None,
                    timeout=STATE_TIMEOUT_MS)
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as grown:
        w.actions["mark_good"].trigger()                     # review key G
    assert grown.args[1]["references"] == 4 and cached_pipeline.mapper.kind == "references"
    assert len(cached_pipeline.mapper.references) == 4
    assert fm.box.combo.currentText() == "good images (4)"
    assert "good images (4 references" in fm.box.in_use.text()
    assert w.controller.project.settings["defaults"]["map_source"] == "references"
    wait_idle(w)


def test_auto_turns_to_the_references_and_features_come_from_the_disk_cache(
        make_window, image_folder, tiny_bundles, tmp_path, counted, qtbot, wait_idle):
    clip, sam = tiny_bundles
    cache = tmp_path / "features"
    w = make_window(Pipeline(clip, sam, disk_cache=DiskCache(cache)), image_folder)
    with qtbot.waitSignal(w.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose(w, "auto")
    assert done.args[1]["mapper"] == "references"            # good images exist (train/good)
    assert w.folder_map.box.combo.currentText() == "auto: good images (3)"
    refs = {content_hash(load_image(p)) for p in find_images(image_folder / "train" / "good")}
    assert sorted(h for h in counted["images"] if h in refs) == sorted(refs)     # each encoded once
    wait_idle(w)
    w.close()
    w2 = make_window(Pipeline(clip, sam, disk_cache=DiskCache(cache)))     # a restart
    with qtbot.waitSignal(w2.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS) as again:
        assert w2.open_folder(image_folder)
    assert again.args[1]["mapper"] == "references"
    assert sorted(h for h in counted["images"] if h in refs) == sorted(refs)     # none encoded again
    wait_idle(w2)


def test_a_pass_holds_at_most_its_feature_budget(make_window, image_folder, cached_pipeline, qtbot,
                                                  wait_idle, monkeypatch):
    w = make_window(cached_pipeline, image_folder)
    one = MapperStore().new_folder_mapper(cached_pipeline, "mutual").encode_image(_first_image(image_folder))
    monkeypatch.setattr(folder_map_job, "FOLDER_FEATURES_BYTES", 4 * one.nbytes)
    with qtbot.waitSignal(w.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose(w, "mutual")
    assert done.args[1]["folder_images"] == 4                # a seeded subset of 4 of the 7
    assert "this folder (mutual, 4 images" in w.folder_map.box.in_use.text()
    wait_idle(w)


def _first_image(folder):
    return load_image(find_images(folder)[0])


def test_drawn_subset_is_seeded_and_fits_the_budget():
    paths = [f"{i:03d}.png" for i in range(500)]
    assert drawn_subset(paths, 1_200_000, 1 << 30) == paths               # ViT-B-16 tower: all 500
    vit_l = drawn_subset(paths, 4_718_592, 1 << 30)                        # ViT-L-14-336 tower
    assert len(vit_l) == (1 << 30) // 4_718_592 and vit_l == sorted(vit_l)
    assert vit_l == drawn_subset(paths, 4_718_592, 1 << 30)               # the same every time


def test_maps_computed_ahead_are_keyed_by_the_map_state():
    import numpy as np

    from zsas_gui.core.types import AnomalyResult, TextPrompts
    from zsas_gui.qt.ahead import AheadCache

    class Mapper:
        tokens_key, state_key = "patch|x", "a"

    class Pipe:
        mapper = Mapper()

    pipe, ahead, tp = Pipe(), AheadCache(), TextPrompts()
    anomaly = AnomalyResult(anomaly_map=np.zeros((4, 4), np.float32), image_score=0.5)
    ahead.put_anomaly(pipe, "k", tp, anomaly)
    assert ahead.anomaly(pipe, "k", tp) is anomaly
    pipe.mapper.state_key = "b"                              # the references grew
    assert ahead.anomaly(pipe, "k", tp) is None


def test_points_follow_the_map_installed_for_the_same_image_and_parameters(tiny_pipeline, image_folder):
    """The pipeline keeps its last PPG result for point edits; a map installed by a folder pass
    (same image, same parameters) must not get the points of the old map."""
    import numpy as np

    from zsas_gui.core.engine.folder_maps import iter_fit_folder

    paths = find_images(image_folder)
    image = load_image(paths[0])
    old = tiny_pipeline.run_traced("img", image)
    mapper = MapperStore().new_folder_mapper(tiny_pipeline, "mutual")
    for _ in iter_fit_folder(tiny_pipeline, paths, mapper=mapper):
        pass
    tiny_pipeline.mapper = mapper
    new = tiny_pipeline.run_traced("img", image)
    assert new.features.anomaly is not old.features.anomaly
    assert np.array_equal(new.ppg.S, new.features.anomaly.normalized)


def test_an_unreadable_image_is_left_out_of_the_pass_and_named(make_window, image_folder, cached_pipeline,
                                                                qtbot, wait_idle):
    bad = image_folder / "test" / "hole" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    w = make_window(cached_pipeline, image_folder)
    n = len(w.file_list.ordered())
    with qtbot.waitSignal(w.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose(w, "mutual")
    info = done.args[1]
    assert info["left_out"] == [str(bad)] and info["folder_images"] == n - 1
    assert "1 unreadable image(s) left out: broken.png" in w.folder_map.box.in_use.text()
    wait_idle(w)
