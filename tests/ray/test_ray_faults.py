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
    """A SegmentWorker that kills its own actor (``ray.kill``, restart allowed) on reaching an image
    of ``victims``: ``{rel: marker file}`` kills once in all (the marker remembers it), ``{rel: None}``
    every time."""

    def __init__(self, *args, victims: dict[str, str | None], **kwargs):
        super().__init__(*args, **kwargs)
        self.victims = victims

    def one(self, src, rel):
        if rel in self.victims and (self.victims[rel] is None or not Path(self.victims[rel]).exists()):
            import ray

            if self.victims[rel] is not None:
                Path(self.victims[rel]).touch()
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


def test_killed_actors_are_replaced_and_the_job_completes(tmp_path, ray_runtime, tiny_models):
    """img003 kills its actor once: Ray restarts it and the block runs again. img001 kills every
    actor it meets: after the retry its block is dropped, its image recorded; the job finishes."""
    folder, out = tmp_path / "in", tmp_path / "out"
    make_images(folder, 6)
    clip, sam = tiny_models
    kwargs = {"models": ModelSpec(str(clip), str(sam), "cpu"), "params": MethodParams(),
              "text": TextPrompts(), "out": str(out), "save_scores": False, "colormap": "jet",
              "victims": {"img003": str(tmp_path / "killed-once"), "img001": None}}
    items = [(str(p), p.stem) for p in sorted(folder.glob("*.png"))]
    seen = []
    results = run_job(items, KillingWorker, kwargs, ActorSpec(2, 2),
                      lambda outcome, entry: seen.append(outcome), max_task_retries=1)
    assert (tmp_path / "killed-once").exists()                  # the actor really was killed
    outcomes = {entry["rel"]: (outcome, entry) for outcome, entry in results}
    assert outcomes["img001"][0] == "failed" and "died 2 times" in outcomes["img001"][1]["error"]
    assert all(outcomes[f"img{i:03d}"][0] == "done" for i in (0, 2, 3, 4, 5)) and len(seen) == 6
    assert sorted(p.stem for p in (out / "records").glob("*.json")) == [f"img{i:03d}" for i in (0, 2, 3, 4, 5)]
