"""Folder precompute on the lane: every image encoded at the lowest priority with progress, an
interactive request first, cancel; a precomputed image opens without an encoder call, also after
a restart (disk cache); the cache settings."""

import threading
import time

import pytest
from PySide6.QtCore import Qt

from zsas_gui.core.engine.cache import DiskCache
from zsas_gui.core.engine.pipeline import Pipeline


@pytest.fixture
def cached_pipeline(tiny_bundles, tmp_path):
    clip, sam = tiny_bundles
    return Pipeline(clip, sam, disk_cache=DiskCache(tmp_path / "features"))


def _shown(w, rel):
    doc = w.controller.doc
    return doc is not None and doc.image_id == rel and doc.mask is not None and not doc.needs_refine \
        and w.controller.heatmap is not None


def test_precompute_encodes_every_image_and_a_precomputed_image_needs_no_encoder_call(
        make_window, image_folder, cached_pipeline, qtbot, wait_idle):
    w = make_window(cached_pipeline, image_folder)
    rels = w.file_list.ordered()
    qtbot.waitUntil(lambda: _shown(w, rels[0]), timeout=300_000)
    wait_idle(w)
    progress = []
    w.lane.precompute_progress.connect(lambda d, t, rel: progress.append((d, t)))
    with qtbot.waitSignal(w.lane.precompute_finished, timeout=300_000) as done:
        assert w.precompute.start()
        assert w.precompute.label.isVisible() and w.precompute.cancel_button.isVisible()
    assert done.args == [len(rels), len(rels), False]
    assert progress[-1] == (len(rels), len(rels)) and [d for d, _ in progress] == list(range(1, len(rels) + 1))
    assert not w.precompute.label.isVisible()
    assert all(w.file_list.score_of(r) is not None for r in rels)      # every score is in the list
    calls = dict(cached_pipeline.encoder_calls)
    assert calls["sam"] == len(rels)                                    # each image encoded once
    w.file_list.select(rels[-1])
    qtbot.waitUntil(lambda: _shown(w, rels[-1]), timeout=300_000)
    wait_idle(w)
    assert cached_pipeline.encoder_calls == calls                        # no encoder call


def test_precomputed_features_survive_a_restart(make_window, image_folder, tiny_bundles, tmp_path, qtbot,
                                               wait_idle):
    clip, sam = tiny_bundles
    first = Pipeline(clip, sam, disk_cache=DiskCache(tmp_path / "features"))
    w = make_window(first, image_folder)
    rels = w.file_list.ordered()
    with qtbot.waitSignal(w.lane.precompute_finished, timeout=300_000):
        w.precompute.start()
    wait_idle(w)
    w.close()
    again = Pipeline(clip, sam, disk_cache=DiskCache(tmp_path / "features"))   # the app restarted
    w2 = make_window(again, image_folder)
    for rel in (rels[0], rels[3]):
        w2.file_list.select(rel)
        qtbot.waitUntil(lambda r=rel: _shown(w2, r), timeout=300_000)
    wait_idle(w2)
    assert again.encoder_calls == {"clip": 0, "sam": 0}


class SlowPipeline:
    """The real pipeline; each features computation takes at least ``delay`` s (cancellable)."""

    def __init__(self, pipe, delay=0.12):
        self._pipe, self.delay = pipe, delay
        self.log: list[str] = []
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    iter_run = Pipeline.iter_run      # the one orchestration, calling this object's iter_features

    def iter_features(self, key, image, text_prompts=None, map_settings=None):
        yield "slow"
        time.sleep(self.delay)
        with self.lock:
            self.log.append(key)
        return (yield from self._pipe.iter_features(key, image, text_prompts, map_settings))


def test_an_interactive_request_goes_first_and_precompute_cancels(make_window, image_folder, tiny_pipeline,
                                                                  qtbot, wait_idle):
    slow = SlowPipeline(tiny_pipeline)
    w = make_window(slow, image_folder)
    rels = w.file_list.ordered()
    qtbot.waitUntil(lambda: _shown(w, rels[0]), timeout=300_000)
    wait_idle(w)
    c = w.controller
    seen = {}
    w.lane.result_ready.connect(lambda req, _res: seen.setdefault(req.revision, w.lane.precompute_state))
    assert w.precompute.start()
    qtbot.waitUntil(lambda: w.lane.precompute_state[0] >= 1, timeout=300_000)
    c.add_point(30, 30, True)
    c.submit_now()
    rev = c.doc.revision
    qtbot.waitUntil(lambda: rev in seen, timeout=300_000)
    done, total = seen[rev]
    assert total == len(rels) and done < total            # the edit did not wait for the folder
    with qtbot.waitSignal(w.lane.precompute_finished, timeout=300_000) as fin:
        qtbot.mouseClick(w.precompute.cancel_button, Qt.MouseButton.LeftButton)
    d, t, cancelled = fin.args
    assert cancelled and d < t == len(rels)
    wait_idle(w)
    assert w.lane.precompute_state == (0, 0) and not w.precompute.label.isVisible()
    assert _shown(w, rels[0]) and c.doc.revision == rev   # the edit's result is the one applied
    assert slow.log                                       # the slow step really ran (iter_run calls it)


def test_the_cache_dialog_sets_the_size_and_clears(make_window, image_folder, cached_pipeline, qtbot,
                                                   wait_idle):
    from zsas_gui.qt.precompute import cache_max_gb

    w = make_window(cached_pipeline, image_folder)
    with qtbot.waitSignal(w.lane.precompute_finished, timeout=300_000):
        w.precompute.start()
    wait_idle(w)
    cache = cached_pipeline.disk_cache
    assert cache.nbytes > 0
    w.precompute.show_cache_dialog()
    dlg = w.precompute.cache_dialog
    assert str(cache.folder) in dlg.folder.text() and "MB" in dlg.used.text()
    dlg.max_gb.setValue(7)
    assert cache.max_bytes == 7 << 30 and cache_max_gb() == 7
    dlg.clear()
    assert cache.nbytes == 0 and dlg.used.text() == "0.0 MB"
    dlg.close()


def test_the_app_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    from zsas_gui.qt.precompute import default_cache_dir, make_disk_cache

    monkeypatch.setenv("ZSAS_FEATURE_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert make_disk_cache().folder == tmp_path / "c"
    monkeypatch.delenv("ZSAS_FEATURE_CACHE")
    assert default_cache_dir().parts[-2:] == ("zsas-gui", "features")
