"""The inference lane: ONE worker thread owns the Pipeline; the GUI thread never waits on it.

Requests are immutable values captured on the GUI thread (image id, document revision, a copy of
the prompts, parameters, text prompts). The lane holds at most one pending request: a newer one
supersedes it, and a running one for an older revision is cancelled at its next checkpoint (the
pipeline's ``iter_run`` yields between encoders and between cascade stages). Results travel back
as queued signals carrying the request; the receiver drops a result whose revision is stale.
Errors become the ``failed`` signal, never an exception in the GUI thread.

Lower-priority work runs only when nothing else is pending: model loading (first), then
prefetching (encoding the next images ahead within a memory budget), then folder precompute
(every image of the folder, one image per job: an interactive request always goes first, and a
precompute job it interrupts is put back at the head of its queue). Out of memory while running
a request also emits ``out_of_memory`` (the window offers the CPU or a smaller model).

The work is a set of typed jobs (lane_jobs.py) run by a scheduler (lane_scheduler.py) against an
explicit context (lane_context.py); this class is the GUI thread's side: the signals and the
calls that queue jobs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from .ahead import AheadCache
from .lane_context import LaneContext, PrefetchBudget
from .lane_jobs import AheadItem, LaneJob, LoadModels, Precompute, Prefetch, Request, SwitchDevice, WarmUp
from .lane_scheduler import Scheduler

if TYPE_CHECKING:
    from ..core.engine.cache import DiskCache
    from ..core.engine.pipeline import Pipeline

#: Scheduling niceness of the worker thread (and the compute threads it starts) relative to the
#: GUI thread, so that the window gets the CPU first when both want it (Linux; ignored elsewhere).
LANE_NICE = int(os.environ.get("ZSAS_LANE_NICE", "5"))
#: Default memory budget for features encoded ahead of the user.
PREFETCH_BUDGET_BYTES = 512 << 20


class InferenceLane(QObject):
    """The single background worker. Signals are emitted from the worker thread and delivered
    queued to receivers on the GUI thread."""

    progress = Signal(object, str, int, int)     # request, text, step, total (0 = encoding)
    features_ready = Signal(object, object)      # request, AnomalyResult
    stage_ready = Signal(object, object)         # request, StageResult
    ppg_ready = Signal(object, object)           # request, PPGResult or None (just before its result_ready)
    result_ready = Signal(object, object)        # request, SegmentationResult
    cancelled = Signal(object)                   # request
    failed = Signal(object, str)                 # request (or None), message
    prefetched = Signal(str, float)              # image id, image score
    models_loaded = Signal(object)               # dict: ids, device, dtype, warnings
    models_failed = Signal(str)                  # message
    idle = Signal()                              # nothing left to do
    out_of_memory = Signal(object, str)          # request, message (also sent as ``failed``)
    precompute_progress = Signal(int, int, str)  # images done, total, image id just done
    precompute_finished = Signal(int, int, bool) # done, total, cancelled

    def __init__(self, pipeline: Pipeline | None = None, prefetch_budget_bytes: int = PREFETCH_BUDGET_BYTES,
                 parent: QObject | None = None, nice: int = LANE_NICE, disk_cache: DiskCache | None = None):
        """``disk_cache``: the feature cache given to the pipelines this lane loads (models chosen
        in the app); a ``pipeline`` passed in keeps its own."""
        super().__init__(parent)
        self.disk_cache = disk_cache
        self.ahead = AheadCache()              # decoded images and automatic results done ahead
        self._scheduler = Scheduler(lambda: self._ctx.pipe is not None, self.idle.emit)
        self._ctx = LaneContext(self, self._scheduler, self.ahead, PrefetchBudget(prefetch_budget_bytes),
                                pipeline, disk_cache)
        if pipeline is not None:
            self._scheduler.push(WarmUp())
        self._scheduler.start(self._ctx, nice)

    # -- state (read from the GUI thread) ---------------------------------------------------------
    @property
    def has_pipeline(self) -> bool:
        return self._ctx.pipe is not None

    @property
    def pipeline(self) -> Pipeline | None:
        """The Pipeline (owned by the worker: read its attributes, never call it from the GUI)."""
        return self._ctx.pipe

    @property
    def counters(self):
        """How many jobs ran, by what they did ("refines", "features", "prefetched", ...)."""
        return self._ctx.counters

    @property
    def prefetch_budget_bytes(self) -> int:
        return self._ctx.budget.max_bytes

    @prefetch_budget_bytes.setter
    def prefetch_budget_bytes(self, n: int) -> None:
        self._ctx.budget.max_bytes = int(n)

    @property
    def precompute_state(self) -> tuple[int, int]:
        """(images done, total) of the running folder precompute; (0, 0) when none runs."""
        return self._ctx.precompute.state

    @property
    def busy(self) -> bool:
        """Interactive work running or waiting (what the status bar reports)."""
        return self._scheduler.busy()

    @property
    def has_work(self) -> bool:
        """Anything running or queued, prefetch and precompute included; False means the lane
        will stay idle until something is submitted."""
        return self._scheduler.has_work()

    # -- queueing work (never blocks on it) -------------------------------------------------------
    def submit(self, request: Request) -> None:
        """Queue ``request``; it supersedes the pending one and cancels stale running work."""
        self._scheduler.submit(request)

    def cancel(self) -> None:
        """Cancel the running request and drop the pending one."""
        dropped = self._scheduler.cancel_interactive()
        if dropped is not None:
            self.cancelled.emit(dropped)

    def prefetch(self, items: list[AheadItem]) -> None:
        """Replace the prefetch queue (images to encode ahead, most useful first). Images no longer
        ahead stop counting against the budget (the pipeline's LRU cache owns their memory)."""
        self._ctx.budget.keep_only({i.image_id for i in items})
        self._scheduler.replace("prefetch", [Prefetch(i) for i in items])

    def forget_prefetched(self, image_id: str) -> None:
        """The user reached this image: its features no longer count against the prefetch budget."""
        self._ctx.budget.release(image_id)

    def precompute(self, items: list[AheadItem]) -> None:
        """Encode every image of ``items`` at the lowest priority (replacing a running precompute);
        ``precompute_progress`` follows each image and ``precompute_finished`` the last."""
        self._ctx.precompute.start([Precompute(i) for i in items])

    def cancel_precompute(self) -> None:
        """Stop the folder precompute (the image being encoded stops at its next checkpoint)."""
        self._ctx.precompute.cancel()

    def run_folder_pass(self, job: LaneJob) -> list[LaneJob]:
        """Queue a folder map pass (folder_map_job.py) in place of any other; returns the passes
        it replaced that had not started (the running one is stopped at its next step)."""
        dropped = self._scheduler.drop("folder")
        self._scheduler.push(job)
        return dropped

    def cancel_folder_pass(self) -> list[LaneJob]:
        """Stop the folder map pass; returns the passes dropped before they ran."""
        return self._scheduler.drop("folder")

    def load_models(self, clip: str | None, sam: str | None, device: str = "auto",
                    precision: str = "auto") -> None:
        """Load models on the worker; ``models_loaded`` or ``models_failed`` follows."""
        self._scheduler.push(LoadModels(clip, sam, device, precision))

    def switch_device(self, device: str = "cpu") -> None:
        """Move the loaded models to ``device`` on the worker (after running out of GPU memory);
        ``models_loaded`` or ``models_failed`` follows."""
        self._scheduler.push(SwitchDevice(device))

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop the worker (cancelling work at its next checkpoint) and join it (``timeout_ms``
        None: however long the step in progress takes; a thread must not outlive its QThread).
        An ONNX export child (the decoder's warm-up) has no checkpoint: it is killed, and the
        warm-up falls back to the torch decoder and returns."""
        import time

        from ..core.sam.onnx_subprocess import cancel_exports

        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            cancel_exports()                 # also one the worker started since the last pass
            if self._scheduler.stop(100):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
