"""What the lane's jobs may use (:class:`LaneContext`), and the two pieces of worker state it
holds besides the pipeline: the prefetch memory budget and the folder precompute's progress.

A job sees the lane only through its context: the pipeline (``pipe``, replaced by
``install``), the signals it may emit (``signals``: the :class:`~.lane.InferenceLane`), the
ahead cache, the counters, the budget and the precompute, and the scheduler's ``checkpoint`` /
``drive`` (stop a cancelled job between steps).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, TypeVar

from ..core.engine.events import RunEvent, drive
from ..core.types import TextPrompts
from .threads import freeze_heap

if TYPE_CHECKING:
    from ..core.engine.cache import DiskCache
    from ..core.engine.features import ImageFeatures
    from ..core.engine.pipeline import Pipeline
    from .ahead import AheadCache
    from .lane import InferenceLane
    from .lane_jobs import Precompute
    from .lane_scheduler import Scheduler

log = logging.getLogger(__name__)
T = TypeVar("T")


class Cancelled(Exception):
    """Raised at a checkpoint of a job that was superseded or cancelled."""


class PrefetchBudget:
    """Bytes of features held for images prefetched ahead of the user (thread-safe). The
    pipeline's LRU caches own the memory; this only decides whether one more image may go."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._held: dict[str, int] = {}
        self._per_image = 0            # the largest image's features seen (bytes)
        self._lock = threading.Lock()

    def note_size(self, feats: ImageFeatures) -> None:
        n = int(feats.anomaly.anomaly_map.nbytes) + (int(feats.sam.nbytes) if feats.sam is not None else 0)
        with self._lock:
            self._per_image = max(self._per_image, n)

    @property
    def full(self) -> bool:
        with self._lock:
            return bool(self._per_image) and sum(self._held.values()) + self._per_image > self.max_bytes

    def holds(self, image_id: str) -> bool:
        with self._lock:
            return image_id in self._held

    def hold(self, image_id: str) -> None:
        with self._lock:
            self._held[image_id] = self._per_image

    def keep_only(self, image_ids: set[str]) -> None:
        """Images no longer ahead stop counting."""
        with self._lock:
            self._held = {k: v for k, v in self._held.items() if k in image_ids}

    def release(self, image_id: str | None = None) -> None:
        """``image_id`` (None: every image) no longer counts."""
        with self._lock:
            if image_id is None:
                self._held.clear()
            else:
                self._held.pop(image_id, None)


class FolderPrecompute:
    """Progress of the folder precompute: (done, total), reported by the lane's
    ``precompute_progress`` / ``precompute_finished`` signals (thread-safe)."""

    def __init__(self, scheduler: Scheduler, signals: InferenceLane):
        self._scheduler, self._signals = scheduler, signals
        self._done = self._total = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> tuple[int, int]:
        with self._lock:
            return self._done, self._total

    def start(self, jobs: list[Precompute]) -> None:
        with self._lock:
            self._done, self._total = 0, len(jobs)
        self._scheduler.replace("precompute", jobs)
        if not jobs:
            self._signals.precompute_finished.emit(0, 0, False)

    def cancel(self) -> None:
        self._scheduler.drop("precompute")
        with self._lock:
            had, done, total = self._total > 0, self._done, self._total
            self._done = self._total = 0
        if had:
            self._signals.precompute_finished.emit(done, total, True)

    def step(self, image_id: str) -> None:
        """One image done (or skipped): report it, and the end after the last."""
        with self._lock:
            if not self._total:
                return                        # cancelled meanwhile
            self._done += 1
            done, total = self._done, self._total
            if done >= total:
                self._done = self._total = 0
        self._signals.precompute_progress.emit(done, total, image_id)
        if done >= total:
            self._signals.precompute_finished.emit(done, total, False)

    def interrupted(self, job: Precompute) -> None:
        """An interactive request stopped ``job``: it runs again after that request."""
        with self._lock:
            running = self._total > 0
        if running:
            self._scheduler.push_front(job)


class LaneContext:
    """Everything a lane job may use (see the module docstring). Worker thread only, except
    ``pipe`` which the GUI thread reads through the lane."""

    def __init__(self, signals: InferenceLane, scheduler: Scheduler, ahead: AheadCache,
                 budget: PrefetchBudget, pipe: Pipeline | None, disk_cache: DiskCache | None):
        self.signals = signals
        self.scheduler = scheduler
        self.ahead = ahead
        self.budget = budget
        self.precompute = FolderPrecompute(scheduler, signals)
        self.pipe = pipe
        self.disk_cache = disk_cache
        self.counters: Counter[str] = Counter()

    def checkpoint(self) -> None:
        """Raise :class:`Cancelled` when the running job was superseded or cancelled."""
        self.scheduler.checkpoint()

    def drive(self, gen: Generator[RunEvent, None, T],
              on_event: Callable[[RunEvent], None] | None = None) -> T:
        """Run a pipeline generator with a checkpoint before each step; return its value."""
        return drive(gen, on_event, self.checkpoint)

    @staticmethod
    def warm_up(pipe: Pipeline | None) -> str | None:
        """Build what ``pipe`` builds lazily on first use (its fast decoder, the text features of
        the default prompts), so those one-time costs land on model loading, not on the user's
        first image. Returns the decoder backend (None without SAM or when that failed)."""
        if pipe is not None:
            try:
                pipe.mapper.text_features(TextPrompts())
            except Exception as exc:  # noqa: BLE001 - the first request reports it properly
                log.warning("text feature warm-up failed: %s", exc)
        backend = None
        if pipe is not None and pipe.sam is not None:
            try:
                backend = str(pipe.decoder_backend)
            except Exception as exc:  # noqa: BLE001 - the first refinement reports it properly
                log.warning("decoder warm-up failed: %s", exc)
        freeze_heap("models")
        return backend

    def install(self, pipe: Pipeline, warnings: list[str]) -> None:
        """Make ``pipe`` the lane's pipeline (warmed up) and say so with ``models_loaded``."""
        from ..core.models.device import describe

        decoder = self.warm_up(pipe)
        self.pipe = pipe
        self.budget.release()
        self.ahead.clear()
        clip, sam = pipe.clip, pipe.sam
        bundle = sam or clip
        self.signals.models_loaded.emit({
            "models": pipe.model_ids, "device": bundle.device, "dtype": bundle.dtype,
            "describe": describe(bundle.device, bundle.dtype), "decoder": decoder, "warnings": warnings,
            "random": bool(clip.info.get("random_test_model")
                           or (sam is not None and sam.info.get("random_test_model")))})
