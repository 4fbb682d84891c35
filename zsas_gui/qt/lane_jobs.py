"""The lane's jobs: each one a class with ``run(ctx)``, ``on_cancel(ctx)`` and
``on_error(ctx, exc, message)`` against the :class:`~.lane_context.LaneContext` (all a job may
use), and the ``queue`` it waits in (:data:`~.lane_scheduler.QUEUES`, most urgent first).

- ``"control"``: :class:`LoadModels`, :class:`SwitchDevice`, :class:`WarmUp`;
- ``"interactive"``: :class:`Request` (at most one waits: a newer one supersedes it);
- ``"prefetch"``: :class:`Prefetch` (the next images, within a memory budget);
- ``"precompute"``: :class:`Precompute` (every image of the folder).

Every job value is immutable and made on the GUI thread; the scheduler runs it on the worker.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..core.engine.events import Encoding, FeaturesReady, PointsReady, RunEvent, StageDone
from ..core.errors import ZsasError
from ..core.types import MethodParams, Prompts, TextPrompts
from .lane_context import Cancelled
from .recovery import is_out_of_memory, moved_pipeline

if TYPE_CHECKING:
    from ..core.engine.features import ImageFeatures
    from .lane_context import LaneContext

log = logging.getLogger(__name__)
_serials = itertools.count(1)


class LaneJob:
    """A unit of work for the lane (see the module docstring)."""

    queue: ClassVar[str]

    def run(self, ctx: LaneContext) -> None:
        raise NotImplementedError

    def on_cancel(self, ctx: LaneContext) -> None:
        """Stopped at a checkpoint (superseded, cancelled or the lane shut down)."""

    def on_error(self, ctx: LaneContext, exc: Exception, message: str) -> None:
        log.warning("%s failed: %s", type(self).__name__, message)

    def yields_to(self, request: Request) -> bool:
        """True when ``request`` arriving while this job runs should stop it."""
        return False


# -- interactive ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Request(LaneJob):
    """An interactive computation for one document revision. ``kind``: ``"refine"`` (features,
    then PPG if ``prompts`` is None, then the cascade) or ``"features"`` (heatmap only).
    ``image``: (H, W, 3) uint8 RGB, shared, never mutated by anyone (kept writable: torch warns
    on read-only arrays). ``prompts``: (x, y) image-pixel points, copied, or None for the
    automatic ones."""

    queue: ClassVar[str] = "interactive"

    kind: str
    image_id: str
    revision: int
    image_key: str
    image: np.ndarray
    params: MethodParams
    text_prompts: TextPrompts
    prompts: Prompts | None = None
    serial: int = 0

    @classmethod
    def make(cls, kind: str, image_id: str, revision: int, image_key: str, image: np.ndarray,
             params: MethodParams, text_prompts: TextPrompts, prompts: Prompts | None = None) -> Request:
        if kind not in ("refine", "features"):
            raise ValueError(f"kind must be 'refine' or 'features', got {kind!r}")
        if prompts is not None:
            prompts = Prompts(prompts.points.copy(), prompts.labels.copy(), prompts.scores.copy())
        return cls(kind, image_id, revision, image_key, image, params, text_prompts, prompts, next(_serials))

    def same_work(self, other: LaneJob | None) -> bool:
        """``other`` computes exactly what this request asks (so this one need not run)."""
        return (isinstance(other, Request) and other.kind == self.kind and other.image_id == self.image_id
                and other.revision == self.revision and other.text_prompts == self.text_prompts
                and other.params == self.params)

    def yields_to(self, request: Request) -> bool:
        return True

    def run(self, ctx: LaneContext) -> None:
        pipe = ctx.pipe
        if pipe is None:
            raise ZsasError("no models loaded: open Models… to download or choose them")
        sig = ctx.signals

        def on_event(event: RunEvent) -> None:
            if isinstance(event, Encoding):
                sig.progress.emit(self, f"encoding ({event.step})", 0, 3)
            elif isinstance(event, FeaturesReady):
                ctx.counters["features"] += 1
                ctx.budget.note_size(event.features)
                sig.features_ready.emit(self, event.features.anomaly)
                if self.kind == "refine" and pipe.sam is None:
                    raise ZsasError("no SAM model loaded: the heatmap is shown, but masks need a SAM "
                                    "model (Models…); you can paint masks by hand")
            elif isinstance(event, PointsReady):
                sig.progress.emit(self, "stage 1/3", 1, 3)
            elif isinstance(event, StageDone):
                sig.stage_ready.emit(self, event.stage)
                if event.stage.index < 3:
                    n = event.stage.index + 1
                    sig.progress.emit(self, f"stage {n}/3", n, 3)

        trace = ctx.drive(pipe.iter_run(self.image_key, self.image, self.params, self.text_prompts,
                                        self.prompts, features_only=self.kind == "features",
                                        ppg_for_display=True), on_event)
        if self.kind == "features":
            return
        ctx.checkpoint()
        ctx.counters["refines"] += 1
        sig.ppg_ready.emit(self, trace.ppg)
        sig.result_ready.emit(self, trace.result)

    def on_cancel(self, ctx: LaneContext) -> None:
        ctx.signals.cancelled.emit(self)

    def on_error(self, ctx: LaneContext, exc: Exception, message: str) -> None:
        ctx.signals.failed.emit(self, message)
        if is_out_of_memory(exc):
            ctx.signals.out_of_memory.emit(self, message)


# -- work ahead of the user -----------------------------------------------------------------------
@dataclass(frozen=True)
class AheadItem:
    """An image to prepare ahead (project-relative id, file path, the text prompts to map with);
    with ``params``, its automatic result too (ahead.py)."""

    image_id: str
    path: str
    text_prompts: TextPrompts
    params: MethodParams | None = None


def _features_ahead(ctx: LaneContext, item: AheadItem) -> tuple[str, np.ndarray, ImageFeatures]:
    """Encode ``item``'s image: features to the pipeline's caches, pixels and anomaly map to the
    ahead cache. Returns (image key, (H, W, 3) uint8 RGB pixels, features)."""
    pipe = ctx.pipe
    key, image = ctx.ahead.read(item.path)
    feats = ctx.drive(pipe.iter_run(key, image, text_prompts=item.text_prompts, features_only=True)).features
    ctx.budget.note_size(feats)
    ctx.ahead.put_anomaly(pipe, key, item.text_prompts, feats.anomaly)
    return key, image, feats


def _result_ahead(ctx: LaneContext, item: AheadItem, key: str, image: np.ndarray,
                  only_if_room: bool) -> None:
    """Keep ``item``'s automatic result (what a ``"refine"`` request with automatic points gives)
    unless kept already; ``only_if_room``: not when that would evict another (a folder precompute
    keeps the results of the folder's first images; the prefetch, which follows the user, does
    the rest). A failure here is only logged: the features are what was asked for."""
    pipe = ctx.pipe
    if (item.params is None or pipe.sam is None
            or ctx.ahead.result(pipe, key, item.params, item.text_prompts) is not None
            or (only_if_room and not ctx.ahead.has_room)):
        return
    try:
        trace = ctx.drive(pipe.iter_run(key, image, item.params, item.text_prompts))
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - the request for this image will report it
        log.warning("automatic result ahead of %s failed: %s", item.image_id, exc)
        return
    ctx.counters["results_ahead"] += 1
    ctx.ahead.put_result(pipe, key, item.params, item.text_prompts, trace.ppg, trace.result)


@dataclass(frozen=True)
class Prefetch(LaneJob):
    """Encode one of the next images (and its automatic result) within the memory budget."""

    queue: ClassVar[str] = "prefetch"
    item: AheadItem

    def yields_to(self, request: Request) -> bool:
        return self.item.image_id != request.image_id

    def run(self, ctx: LaneContext) -> None:
        item = self.item
        done = ctx.budget.holds(item.image_id)
        if done:
            key = ctx.ahead.read(item.path)[0]        # keep its pixels decoded
            if item.params is None or ctx.ahead.result(ctx.pipe, key, item.params,
                                                       item.text_prompts) is not None:
                return
        elif ctx.budget.full:
            log.info("prefetch of %s skipped: memory budget %d MB reached", item.image_id,
                     ctx.budget.max_bytes >> 20)
            return
        key, image, feats = _features_ahead(ctx, item)
        ctx.budget.hold(item.image_id)
        if not done:
            ctx.counters["prefetched"] += 1
            ctx.signals.prefetched.emit(item.image_id, float(feats.anomaly.image_score))
        _result_ahead(ctx, item, key, image, only_if_room=False)


@dataclass(frozen=True)
class Precompute(LaneJob):
    """Encode one image of the folder precompute (precompute.py)."""

    queue: ClassVar[str] = "precompute"
    item: AheadItem

    def yields_to(self, request: Request) -> bool:
        return self.item.image_id != request.image_id

    def run(self, ctx: LaneContext) -> None:
        key, image, feats = _features_ahead(ctx, self.item)
        _result_ahead(ctx, self.item, key, image, only_if_room=True)
        ctx.counters["precomputed"] += 1
        ctx.signals.prefetched.emit(self.item.image_id, float(feats.anomaly.image_score))
        ctx.precompute.step(self.item.image_id)

    def on_cancel(self, ctx: LaneContext) -> None:
        ctx.precompute.interrupted(self)          # an interactive request stopped it: again after

    def on_error(self, ctx: LaneContext, exc: Exception, message: str) -> None:
        log.warning("precompute of %s failed: %s", self.item.image_id, message)
        if is_out_of_memory(exc):
            ctx.precompute.cancel()
            ctx.signals.out_of_memory.emit(None, message)
        else:
            ctx.precompute.step(self.item.image_id)   # an unreadable image is skipped, the rest go on


# -- control ----------------------------------------------------------------------------------------
class _ControlJob(LaneJob):
    queue: ClassVar[str] = "control"

    def on_error(self, ctx: LaneContext, exc: Exception, message: str) -> None:
        ctx.signals.models_failed.emit(message)


@dataclass(frozen=True)
class LoadModels(_ControlJob):
    """Load checkpoints (registry names or paths) and install a new pipeline."""

    clip: str | None
    sam: str | None
    device: str = "auto"
    precision: str = "auto"

    def run(self, ctx: LaneContext) -> None:
        from ..core.engine.pipeline import Pipeline
        from ..core.models.loading import load_clip, load_sam

        warnings = []
        clip = load_clip(self.clip, device=self.device, precision=self.precision)
        try:
            sam = load_sam(self.sam, device=self.device, precision=self.precision)
        except ZsasError as exc:
            sam = None
            warnings.append(f"SAM not loaded: {exc}")
        ctx.install(Pipeline(clip, sam, disk_cache=ctx.disk_cache), warnings)


@dataclass(frozen=True)
class SwitchDevice(_ControlJob):
    """Move the loaded models to ``device`` (after running out of GPU memory)."""

    device: str = "cpu"

    def run(self, ctx: LaneContext) -> None:
        old = ctx.pipe
        if old is None:
            raise ZsasError("no models loaded to move")
        ctx.pipe = None
        ctx.install(moved_pipeline(old, self.device, ctx.disk_cache), [f"models moved to {self.device}"])


@dataclass(frozen=True)
class WarmUp(_ControlJob):
    """Build what the lane's pipeline (given at start) builds lazily on first use."""

    def run(self, ctx: LaneContext) -> None:
        ctx.warm_up(ctx.pipe)

    def on_error(self, ctx: LaneContext, exc: Exception, message: str) -> None:
        log.warning("warm-up failed: %s", message)
