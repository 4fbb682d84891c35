"""The inference lane: superseded requests, stale results dropped, cancel between stages, errors."""

import threading
import time

import numpy as np
import pytest

from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.types import MethodParams, Prompts, TextPrompts
from zsas_gui.qt.lane import InferenceLane
from zsas_gui.qt.lane_jobs import Request

#: guards against a hang, never the expected time: the first request also waits for the lane's
#: warm-up (the decoder's ONNX export runs in a child process, tens of seconds on a loaded machine)
STATE_TIMEOUT_MS = 300_000
GUARD_S = STATE_TIMEOUT_MS / 1000
IMG = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)


class HeldPipeline:
    """The real pipeline, with the cascade held before it hands over stage 1 (until released)."""

    def __init__(self, pipe):
        self._pipe = pipe
        self.entered = threading.Event()
        self.release = threading.Event()
        self.stages_computed = 0

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    iter_run = Pipeline.iter_run      # the one orchestration, calling this object's iter_refine

    def iter_refine(self, *args, **kwargs):
        gen = self._pipe.iter_refine(*args, **kwargs)
        while True:
            try:
                stage = next(gen)
            except StopIteration as stop:
                return stop.value
            self.stages_computed += 1
            if stage.index == 1:
                self.entered.set()
                assert self.release.wait(GUARD_S), "test never released the cascade"
            yield stage


@pytest.fixture
def lane_for(qtbot):
    lanes = []

    def make(pipe):
        lane = InferenceLane(pipe)
        lanes.append(lane)
        return lane

    yield make
    for lane in lanes:
        assert lane.shutdown()


def _req(revision, image_id="a", prompts=None):
    pts = prompts or Prompts(np.array([[40, 30]], np.float32), np.array([1]))
    return Request.make("refine", image_id, revision, "key-a", IMG, MethodParams(), TextPrompts(), pts)


def _record(lane):
    seen = {"stages": [], "results": [], "cancelled": [], "failed": []}
    lane.stage_ready.connect(lambda r, s: seen["stages"].append((r.revision, s.index)))
    lane.result_ready.connect(lambda r, res: seen["results"].append(r.revision))
    lane.cancelled.connect(lambda r: seen["cancelled"].append(r.revision))
    lane.failed.connect(lambda r, m: seen["failed"].append(m))
    return seen


def test_a_newer_request_supersedes_the_pending_one_and_cancels_the_running_one(lane_for, tiny_pipeline, qtbot):
    held = HeldPipeline(tiny_pipeline)
    lane = lane_for(held)
    seen = _record(lane)
    lane.submit(_req(1))
    assert held.entered.wait(GUARD_S)
    lane.submit(_req(2))          # pending
    lane.submit(_req(3))          # supersedes 2 (never runs)
    held.release.set()
    qtbot.waitUntil(lambda: seen["results"] == [3], timeout=STATE_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not lane.busy, timeout=STATE_TIMEOUT_MS)
    qtbot.wait(20)
    assert seen["cancelled"] == [1]                      # stopped at its first checkpoint
    assert {rev for rev, _ in seen["stages"]} <= {1, 3} and 2 not in seen["results"]
    assert [i for rev, i in seen["stages"] if rev == 3] == [1, 2, 3]
    assert not seen["failed"]


def test_cancel_stops_between_stages(lane_for, tiny_pipeline, qtbot):
    held = HeldPipeline(tiny_pipeline)
    lane = lane_for(held)
    seen = _record(lane)
    lane.submit(_req(1))
    assert held.entered.wait(GUARD_S)
    lane.cancel()
    held.release.set()
    qtbot.waitUntil(lambda: seen["cancelled"] == [1], timeout=STATE_TIMEOUT_MS)
    qtbot.wait(20)
    assert held.stages_computed == 1                     # stage 2 never ran
    assert seen["stages"] == [(1, 1)] and seen["results"] == []
    assert lane.counters["cancelled"] == 1


def test_errors_become_a_signal(lane_for, qtbot):
    lane = lane_for(None)
    seen = _record(lane)
    lane.submit(_req(1))
    qtbot.waitUntil(lambda: bool(seen["failed"]), timeout=300_000)
    assert "no models loaded" in seen["failed"][0]


def test_a_result_for_an_old_revision_is_dropped(make_window, image_folder, tiny_pipeline, qtbot, wait_idle):
    w = make_window(tiny_pipeline, image_folder)
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    c, doc = w.controller, w.controller.doc
    c.add_point(20, 20, True)
    c.submit_now()
    rev = doc.revision
    deadline = time.monotonic() + 20
    while w.lane.busy and time.monotonic() < deadline:   # no Qt events: the result stays queued
        time.sleep(0.01)
    assert not w.lane.busy
    c.add_point(100, 80, False)                          # the document moves on
    assert doc.revision == rev + 1
    qtbot.waitUntil(lambda: c.dropped_results == 1, timeout=300_000)
    assert doc.revision == rev + 1
    qtbot.waitUntil(lambda: not doc.needs_refine, timeout=STATE_TIMEOUT_MS)
    assert len(doc.prompts) >= 2 and doc.prompts.labels[-1] == 0


def test_the_next_images_are_encoded_ahead_within_the_budget(make_window, image_folder, tiny_pipeline, qtbot,
                                                            wait_idle):
    w = make_window(tiny_pipeline, image_folder)
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    rels = w.file_list.ordered()
    assert w.lane.counters["prefetched"] == 2
    assert w.file_list.score_of(rels[1]) is not None and w.file_list.score_of(rels[2]) is not None
    calls = dict(tiny_pipeline.encoder_calls)
    w.file_list.select(rels[1])                       # already encoded: no encoder runs
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    assert tiny_pipeline.encoder_calls["sam"] == calls["sam"] + 1   # only the newly prefetched rels[3]
    w.lane.prefetch_budget_bytes = 1                  # budget exhausted: nothing more ahead
    before = w.lane.counters["prefetched"]
    w.file_list.select(rels[4])
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=STATE_TIMEOUT_MS)
    wait_idle(w)
    assert w.lane.counters["prefetched"] == before
