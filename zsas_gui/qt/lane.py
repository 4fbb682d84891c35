"""The inference lane: ONE worker thread owns the Pipeline; the GUI thread never waits on it.

Requests are immutable values captured on the GUI thread (image id, document revision, a copy of
the prompts, parameters, text prompts). The lane holds at most one pending request: a newer one
supersedes it, and a running one for an older revision is cancelled at its next checkpoint (the
pipeline's generators yield between encoders and between cascade stages). Results travel back as
queued signals carrying the request; the receiver drops a result whose revision is stale.
Errors become the ``failed`` signal, never an exception in the GUI thread.

Lower-priority work runs only when nothing else is pending: model loading (first), then
prefetching (encoding the next images ahead within a memory budget), then folder precompute
(every image of the folder, one image per job: an interactive request always goes first, and a
precompute job it interrupts is put back at the head of its queue). Out of memory while running
a request also emits ``out_of_memory`` (the window offers the CPU or a smaller model).
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections import deque
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..core.errors import ZsasError
from ..core.types import TextPrompts
from .ahead import AheadCache, LaneAhead
from .lane_jobs import (  # noqa: F401
    LoadModels,
    PrefetchItem,
    Request,
    _Cancelled,
    _same_work,
    image_key_for,
    map_settings_of,
)
from .precompute import LanePrecompute, PrecomputeItem
from .recovery import LaneRecovery, is_out_of_memory
from .threads import FunctionThread, freeze_heap, lower_priority

log = logging.getLogger(__name__)

#: Scheduling niceness of the worker thread (and the compute threads it starts) relative to the
#: GUI thread, so that the window gets the CPU first when both want it (Linux; ignored elsewhere).
LANE_NICE = int(os.environ.get("ZSAS_LANE_NICE", "5"))
#: Default memory budget for features encoded ahead of the user.
PREFETCH_BUDGET_BYTES = 512 << 20

class InferenceLane(LanePrecompute, LaneAhead, LaneRecovery, QObject):
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

    def __init__(self, pipeline: Any = None, prefetch_budget_bytes: int = PREFETCH_BUDGET_BYTES,
                 parent: QObject | None = None, nice: int = LANE_NICE, disk_cache: Any = None):
        """``disk_cache``: a :class:`~zsas_gui.core.engine.cache.DiskCache` given to the pipelines this
        lane loads (models chosen in the app); a ``pipeline`` passed in keeps its own."""
        super().__init__(parent)
        self.nice = nice
        self.disk_cache = disk_cache
        self.ahead = AheadCache()              # decoded images and automatic results done ahead
        self._precompute: deque[PrecomputeItem] = deque()
        self._pc_total = self._pc_done = 0     # folder precompute: images done, total
        self._pipe = pipeline
        self._cond = threading.Condition()
        self._pending: Request | None = None
        self._control: deque[Any] = deque()
        self._prefetch: deque[PrefetchItem] = deque()
        self._running: Any = None
        self._cancel = threading.Event()
        self._stop = False
        self.prefetch_budget_bytes = int(prefetch_budget_bytes)
        self._prefetched_bytes: dict[str, int] = {}
        self._per_image_bytes = 0
        self._last_ppg: tuple | None = None          # ((pipeline, image key, text prompts, params), PPGResult)
        self.counters = {"refines": 0, "cancelled": 0, "features": 0, "prefetched": 0, "failed": 0}
        if pipeline is not None:
            self._control.append(("warm", pipeline))
        self._thread = FunctionThread(self._loop, "zsas-inference-lane")
        self._thread.start()

    # -- GUI-thread API (never blocks on work) --------------------------------------------------
    @property
    def has_pipeline(self) -> bool:
        return self._pipe is not None

    @property
    def pipeline(self) -> Any:
        """The Pipeline (owned by the worker: read its attributes, never call it from the GUI)."""
        return self._pipe

    def submit(self, request: Request) -> None:
        """Queue ``request``; it supersedes the pending one and cancels stale running work."""
        with self._cond:
            run = self._running
            if _same_work(run, request) or _same_work(self._pending, request):
                return                      # that exact computation is already under way
            self._pending = request
            if isinstance(run, Request) or (isinstance(run, (PrefetchItem, PrecomputeItem))
                                            and run.image_id != request.image_id):
                self._cancel.set()
            self._cond.notify()

    def prefetch(self, items: list[PrefetchItem]) -> None:
        """Replace the prefetch queue (images to encode ahead, most useful first). Images no longer
        ahead stop counting against the budget (the pipeline's LRU cache owns their memory)."""
        with self._cond:
            self._prefetch = deque(items)
            keep = {i.image_id for i in items}
            self._prefetched_bytes = {k: v for k, v in self._prefetched_bytes.items() if k in keep}
            self._cond.notify()

    def load_models(self, clip: str | None, sam: str | None, device: str = "auto",
                    precision: str = "auto") -> None:
        """Load models on the worker; ``models_loaded`` or ``models_failed`` follows."""
        with self._cond:
            self._control.append(LoadModels(clip, sam, device, precision))
            self._cond.notify()

    def set_pipeline(self, pipeline: Any) -> None:
        with self._cond:
            self._control.append(("set", pipeline))
            self._control.append(("warm", pipeline))
            self._cond.notify()

    def cancel(self) -> None:
        """Cancel the running request and drop the pending one."""
        with self._cond:
            dropped, self._pending = self._pending, None
            if isinstance(self._running, Request):
                self._cancel.set()
        if dropped is not None:
            self.cancelled.emit(dropped)

    @property
    def busy(self) -> bool:
        """Interactive work running or waiting (what the status bar reports)."""
        with self._cond:
            return self._running is not None or self._pending is not None or bool(self._control)

    @property
    def has_work(self) -> bool:
        """Anything running or queued, prefetch and precompute included (the worker's own test
        for sleeping); False means the lane will stay idle until something is submitted."""
        with self._cond:
            return self._running is not None or self._queued()

    def _queued(self) -> bool:
        """A job is waiting for the worker (call with ``_cond`` held)."""
        return bool(self._control or self._pending is not None
                    or ((self._prefetch or self._precompute) and self._pipe is not None))

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop the worker (cancelling work at its next checkpoint) and join it (``timeout_ms``
        None: however long the step in progress takes; a thread must not outlive its QThread)."""
        with self._cond:
            self._stop = True
            self._pending = None
            self._prefetch.clear()
            self._precompute.clear()
            self._cancel.set()
            self._cond.notify()
        if timeout_ms is None:
            return self._thread.wait()
        return self._thread.wait(timeout_ms)

    # -- worker thread ------------------------------------------------------------------------------
    def _next_job(self) -> Any:
        with self._cond:
            announced = False
            while not self._stop and not self._queued():
                self._running = None
                if not announced:
                    announced = True
                    self.idle.emit()
                self._cond.wait()
            if self._stop:
                self._running = None
                return None
            if self._control:
                job = self._control.popleft()
            elif self._pending is not None:
                job, self._pending = self._pending, None
            elif self._prefetch:
                job = self._prefetch.popleft()
            else:
                job = self._precompute.popleft()
            self._running = job
            self._cancel = threading.Event()
            return job

    def _loop(self) -> None:
        lower_priority(self.nice)
        while (job := self._next_job()) is not None:
            try:
                if isinstance(job, Request):
                    self._run_request(job)
                elif isinstance(job, PrecomputeItem):
                    self._run_precompute(job)
                elif isinstance(job, PrefetchItem):
                    self._run_prefetch(job)
                elif isinstance(job, LoadModels):
                    self._run_load(job)
                elif job[0] == "warm":
                    self._warm(job[1])
                    freeze_heap("models")
                elif job[0] == "device":
                    self._run_switch_device(job[1])
                else:
                    self._pipe = job[1]
                    self._prefetched_bytes.clear()
                    self.ahead.clear()
            except _Cancelled:
                self.counters["cancelled"] += 1
                if isinstance(job, Request):
                    self.cancelled.emit(job)
                elif isinstance(job, PrecomputeItem):
                    self._precompute_interrupted(job)
            except Exception as exc:  # noqa: BLE001 - every error becomes a signal
                self.counters["failed"] += 1
                if not isinstance(exc, ZsasError):
                    log.error("lane job failed:\n%s", traceback.format_exc())
                msg = str(exc) if isinstance(exc, ZsasError) else f"{type(exc).__name__}: {exc}"
                if isinstance(job, LoadModels) or (isinstance(job, tuple) and job[0] == "device"):
                    self.models_failed.emit(msg)
                elif isinstance(job, Request):
                    self.failed.emit(job, msg)
                    if is_out_of_memory(exc):
                        self.out_of_memory.emit(job, msg)
                elif isinstance(job, PrecomputeItem):
                    self._precompute_failed(job, exc, msg)
                else:
                    log.warning("prefetch of %s failed: %s", getattr(job, "image_id", job), msg)

    @staticmethod
    def _warm(pipe: Any) -> str | None:
        """Build what the pipeline builds lazily on first use (its fast decoder, the text features
        of the default prompts), so those one-time costs land on model loading, not on the
        user's first image."""
        text_features = getattr(getattr(pipe, "mapper", None), "text_features", None)
        try:
            if callable(text_features):
                text_features(TextPrompts())
        except Exception as exc:  # noqa: BLE001 - the first request reports it properly
            log.warning("text feature warm-up failed: %s", exc)
        try:
            backend = getattr(pipe, "decoder_backend", None)    # a property or a method
            if callable(backend):
                backend = backend()
            return None if backend is None else str(backend)
        except Exception as exc:  # noqa: BLE001 - the first refinement reports it properly
            log.warning("decoder warm-up failed: %s", exc)
            return None

    def _check(self) -> None:
        if self._cancel.is_set():
            raise _Cancelled

    def _drive(self, gen, on_yield) -> Any:
        """Run a generator, checking for cancellation at every yield; return its value."""
        while True:
            self._check()
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            on_yield(item)

    def _run_request(self, req: Request) -> None:
        pipe = self._pipe
        if pipe is None:
            raise ZsasError("no models loaded: open Models… to download or choose them")
        feats = self._drive(pipe.iter_features(req.image_key, req.image, req.text_prompts, req.params.clip_map),
                            lambda step: self.progress.emit(req, f"encoding ({step})", 0, 3))
        self.counters["features"] += 1
        self._note_size(feats)
        self.features_ready.emit(req, feats.anomaly)
        if req.kind == "features":
            return
        self._check()
        if getattr(pipe, "sam", None) is None:
            raise ZsasError("no SAM model loaded: the heatmap is shown, but masks need a SAM model "
                            "(Models…); you can paint masks by hand")
        prompts, gated = req.prompts, False
        ppg = self._propose(pipe, feats, req)
        if prompts is None:
            prompts, gated = ppg.prompts, ppg.gated
        self.progress.emit(req, "stage 1/3", 1, 3)

        def on_stage(stage) -> None:
            self.stage_ready.emit(req, stage)
            if stage.index < 3:
                self.progress.emit(req, f"stage {stage.index + 1}/3", stage.index + 1, 3)

        result = self._drive(pipe.iter_refine(feats, prompts, req.params, gated), on_stage)
        self._check()
        result.provenance["text_prompts"] = req.text_prompts.to_dict()
        self.counters["refines"] += 1
        self.ppg_ready.emit(req, ppg)
        self.result_ready.emit(req, result)

    def _propose(self, pipe, feats, req: Request):
        """PPG for ``req``: its automatic points or, when the user's points replace them, the
        R, N and similarity the method panel shows (None if that fails). One-entry cache: a drag
        or a point edit does not recompute it."""
        key = (pipe, req.image_key, req.text_prompts, req.params)
        if self._last_ppg is not None and self._last_ppg[0] == key:
            return self._last_ppg[1]
        try:
            ppg = pipe.propose(feats, req.params)
        except Exception as exc:   # only the method panel needs it when the points are the user's
            if req.prompts is None:
                raise
            log.warning("PPG for the method panel failed: %s", exc)
            return None
        self._last_ppg = (key, ppg)
        return ppg

    def _note_size(self, feats) -> None:
        sam = getattr(feats, "sam", None)
        n = int(feats.anomaly.anomaly_map.nbytes) + (int(sam.nbytes) if sam is not None else 0)
        self._per_image_bytes = max(self._per_image_bytes, n)

    def _run_prefetch(self, item: PrefetchItem) -> None:
        with self._cond:
            used = sum(self._prefetched_bytes.values())
            done = item.image_id in self._prefetched_bytes
        if done:
            key, _image = self._read_ahead(item.path)      # keep its pixels decoded
            if item.params is None or self.ahead.result(self._pipe, key, item.params,
                                                        item.text_prompts) is not None:
                return
        elif self._per_image_bytes and used + self._per_image_bytes > self.prefetch_budget_bytes:
            log.info("prefetch of %s skipped: memory budget %d MB reached", item.image_id,
                     self.prefetch_budget_bytes >> 20)
            return
        key, image = self._read_ahead(item.path)
        feats = self._drive(self._pipe.iter_features(key, image, item.text_prompts, map_settings_of(item)),
                            lambda _step: None)
        self._note_size(feats)
        with self._cond:
            self._prefetched_bytes[item.image_id] = self._per_image_bytes
        if not done:
            self.counters["prefetched"] += 1
            self.prefetched.emit(item.image_id, float(feats.anomaly.image_score))
        self._result_ahead(feats, item.params, item.text_prompts)

    def forget_prefetched(self, image_id: str) -> None:
        """The user reached this image: its features no longer count against the prefetch budget."""
        with self._cond:
            self._prefetched_bytes.pop(image_id, None)

    def _run_load(self, job: LoadModels) -> None:
        from ..core.engine.pipeline import Pipeline
        from ..core.models.loading import load_clip, load_sam

        warnings = []
        clip = load_clip(job.clip, device=job.device, precision=job.precision)
        try:
            sam = load_sam(job.sam, device=job.device, precision=job.precision)
        except ZsasError as exc:
            sam = None
            warnings.append(f"SAM not loaded: {exc}")
        self._install(Pipeline(clip, sam, disk_cache=self.disk_cache), warnings)

    def _install(self, pipe, warnings: list[str]) -> None:
        from ..core.models.device import describe

        clip, sam = pipe.clip, pipe.sam
        decoder = self._warm(pipe) if sam is not None else None
        freeze_heap("models")
        self._pipe = pipe
        self._prefetched_bytes.clear()
        self.ahead.clear()
        bundle = sam or clip
        self.models_loaded.emit({"models": self._pipe.model_ids, "device": bundle.device,
                                 "dtype": bundle.dtype, "describe": describe(bundle.device, bundle.dtype),
                                 "decoder": decoder, "warnings": warnings,
                                 "random": bool(clip.info.get("random_test_model")
                                                or (sam is not None and sam.info.get("random_test_model")))})
