"""The lane's scheduler on its own: queue order, background work waiting for models, each job told
how it ended (run, on_cancel, on_error), and a superseded request never running."""

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import ClassVar

import numpy as np

from zsas_gui.core.errors import ZsasError
from zsas_gui.core.types import MethodParams, TextPrompts
from zsas_gui.qt.lane_context import LaneContext, PrefetchBudget
from zsas_gui.qt.lane_jobs import LaneJob, Request
from zsas_gui.qt.lane_scheduler import Scheduler


@dataclass(eq=False)
class Step(LaneJob):
    """Records that it ran (or how it ended); ``hold`` blocks it until set, then it checkpoints."""

    queue: str
    name: str
    log: list
    hold: threading.Event | None = None
    fail: bool = False
    started: threading.Event = field(default_factory=threading.Event)
    image_id: ClassVar[str] = "x"

    def run(self, ctx):
        self.started.set()
        if self.hold is not None:
            assert self.hold.wait(20)
            ctx.checkpoint()
        if self.fail:
            raise ZsasError(f"{self.name} broke")
        self.log.append(("ran", self.name))

    def on_cancel(self, ctx):
        self.log.append(("cancelled", self.name))

    def on_error(self, ctx, exc, message):
        self.log.append(("error", message))

    def yields_to(self, request):
        return True


class Signals:
    """Stands in for the lane's signals: records ``failed`` (the only one these jobs emit)."""

    def __init__(self, log):
        self.failed = SimpleNamespace(emit=lambda req, message: log.append(("failed", req.revision, message)))


def _scheduler(log, has_pipeline=lambda: True):
    idle = threading.Event()
    sched = Scheduler(has_pipeline, idle.set)
    ctx = LaneContext(Signals(log), sched, None, PrefetchBudget(1), None, None)
    return sched, ctx, idle


NO_MODELS = "no models loaded: open Models… to download or choose them"


def _request(revision):
    return Request.make("features", "a", revision, "k", np.zeros((4, 4, 3), np.uint8), MethodParams(),
                        TextPrompts())


def test_queues_run_most_urgent_first_and_background_waits_for_models():
    ready = threading.Event()
    log = []
    sched, ctx, idle = _scheduler(log, ready.is_set)
    gate = threading.Event()
    first = Step("control", "first", log, hold=gate)
    sched.push(first)
    sched.start(ctx, nice=0)
    assert first.started.wait(20)
    for queue in ("precompute", "prefetch", "control"):
        sched.push(Step(queue, queue, log))
    idle.clear()
    gate.set()
    assert idle.wait(20)
    assert log == [("ran", "first"), ("ran", "control")]      # background waits: no pipeline yet
    idle.clear()
    ready.set()
    sched.push(Step("control", "kick", log))
    assert idle.wait(20)
    assert log[2:] == [("ran", "kick"), ("ran", "prefetch"), ("ran", "precompute")]
    assert sched.stop()


def test_a_request_stops_running_work_that_yields_and_errors_go_to_the_job():
    log = []
    sched, ctx, idle = _scheduler(log)
    gate = threading.Event()
    slow = Step("prefetch", "slow", log, hold=gate)
    sched.push(slow)
    sched.start(ctx, nice=0)
    assert slow.started.wait(20)
    sched.push(Step("control", "broken", log, fail=True))
    sched.submit(_request(1))            # waiting; superseded by the next before it runs
    sched.submit(_request(2))
    idle.clear()
    gate.set()
    assert idle.wait(20)
    assert log == [("cancelled", "slow"), ("error", "broken broke"), ("failed", 2, NO_MODELS)]
    assert ctx.counters["cancelled"] == 1 and ctx.counters["failed"] == 2   # broken; request 2: no models
    assert sched.stop()
