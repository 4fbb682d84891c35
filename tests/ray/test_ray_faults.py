"""Actors killed mid-job (``ray.kill``): Ray replaces them and the job completes; an image that
kills every actor it meets is recorded as lost and the job still finishes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from ray_helpers import make_images

from zsas_gui.core.types import MethodParams, TextPrompts

pytest.importorskip("ray.data")

from zsas_gui.scale.job import run_job
from zsas_gui.scale.runtime import ActorSpec
from zsas_gui.scale.workers import ModelSpec, SegmentWorker


class KillingWorker(SegmentWorker):
    """A SegmentWorker that kills its own actor (``ray.kill``, restart allowed) when it reaches
    ``victim``: once in all (``marker`` file), or every time (``marker`` None)."""

    def __init__(self, *args, victim: str, marker: str | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.victim, self.marker = victim, marker

    def one(self, src, rel):
        if rel == self.victim and (self.marker is None or not Path(self.marker).exists()):
            import ray

            if self.marker is not None:
                Path(self.marker).touch()
            ray.kill(ray.get_runtime_context().current_actor, no_restart=False)
            time.sleep(600)            # the kill lands while this image is in progress
        return super().one(src, rel)


@pytest.fixture(autouse=True)
def _ship_this_module(ray_runtime):
    """Workers cannot import this test module: send KillingWorker by value."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _kwargs(tiny_models, out, victim, marker):
    clip, sam = tiny_models
    return {"models": ModelSpec(str(clip), str(sam), "cpu"), "params": MethodParams(),
            "text": TextPrompts(), "out": str(out), "save_scores": False, "colormap": "jet",
            "victim": victim, "marker": marker}


def _items(folder):
    return [(str(p), p.stem) for p in sorted(folder.glob("*.png"))]


def test_killed_actor_is_replaced_and_the_job_completes(tmp_path, ray_runtime, tiny_models):
    folder, out = tmp_path / "in", tmp_path / "out"
    make_images(folder, 6)
    seen = []
    results = run_job(_items(folder), KillingWorker, _kwargs(tiny_models, out, "img003", str(tmp_path / "killed")),
                      ActorSpec(2, 2), lambda outcome, entry: seen.append(outcome))
    assert (tmp_path / "killed").exists()                       # the actor really was killed
    assert [outcome for outcome, _ in results] == ["done"] * 6 and len(seen) == 6
    assert sorted(p.stem for p in (out / "records").glob("*.json")) == [f"img{i:03d}" for i in range(6)]


def test_image_that_kills_every_actor_is_recorded_and_the_job_finishes(tmp_path, ray_runtime, tiny_models):
    folder, out = tmp_path / "in", tmp_path / "out"
    make_images(folder, 3)
    results = run_job(_items(folder), KillingWorker, _kwargs(tiny_models, out, "img001", None),
                      ActorSpec(1, 1), lambda outcome, entry: None, max_task_retries=1)
    outcomes = {entry["rel"]: (outcome, entry) for outcome, entry in results}
    assert outcomes["img001"][0] == "failed"
    assert "died 2 times" in outcomes["img001"][1]["error"]
    assert outcomes["img000"][0] == outcomes["img002"][0] == "done"
