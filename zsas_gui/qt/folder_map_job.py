"""The folder map's pass on the lane (ALGORITHM.md §1b; the app's "heatmap from" selector,
folder_map_panel.py): build a mutual or references map for the open folder, then make it the
pipeline's map; or go back to the text map.

The pass runs in the lane's ``folder`` queue (after interactive requests, before work ahead). It
fits a NEW mapper beside the one in use (``iter_fit_folder(pipe, paths, mapper=...)``), one step per
image encoded and per image scored; between steps it stops for an interactive request (the
request runs on the map in use) and goes on where it was (the generator is kept, nothing is
redone). Only a finished pass replaces ``pipe.mapper``: a cancelled or failed one leaves the
pipeline's map as it was. The features go through the pipeline's caches (memory and disk: a
folder seen before is not encoded again). A mutual pass ends by ranking the folder: each drawn
image's score on the new map goes to the file list (the lane's ``prefetched`` signal) as the map
is installed. An image that cannot be read is left out and named.

Memory (docs/decisions.md D34): a pass holds at most :data:`FOLDER_FEATURES_BYTES` of features.
A folder whose features would not fit is drawn on through a seeded subset of as many images as
fit (the other images are scored against it, as any image outside the folder is).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PySide6.QtCore import QObject, Signal

from .lane_context import Cancelled
from .lane_jobs import LaneJob

if TYPE_CHECKING:
    from ..core.engine.pipeline import Pipeline
    from .lane_context import LaneContext

#: Bytes of patch features one folder pass may hold (chosen: the CLIP ViT-B-16 tower holds 500
#: images in 574 MB; a larger tower draws on a seeded subset, D34).
FOLDER_FEATURES_BYTES = 1 << 30
SUBSET_SEED = 0
log = logging.getLogger(__name__)


class FolderMapSignals(QObject):
    """Signals of the passes (emitted on the worker, delivered queued on the GUI thread)."""

    progress = Signal(int, str, int, int)      # pass serial, stage ("features"/"scoring"), done, total
    finished = Signal(int, object, str)        # pass serial, mapper info (None: not installed), message


class MapperStore:
    """Per pipeline: its own text map (kept while a folder map is in use) and the folder maps'
    backbone (the loaded CLIP image tower), made once. Worker thread only."""

    def __init__(self) -> None:
        self._text: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._backbone: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def text_mapper(self, pipe: Pipeline):
        """The mapper ``pipe`` was built with (its text map)."""
        return self._text.setdefault(pipe, pipe.mapper)

    def new_folder_mapper(self, pipe: Pipeline, kind: str):
        """A fresh (unfitted) ``mutual`` or ``references`` mapper on the CLIP tower."""
        from ..core.maps.backbones import load_backbone
        from ..core.maps.folder_select import make_folder_mapper

        self.text_mapper(pipe)
        if pipe not in self._backbone:
            self._backbone[pipe] = load_backbone(None, None, pipe.clip)
        return make_folder_mapper(kind, self._backbone[pipe])


def drawn_subset(paths: list[str], per_image_bytes: int, budget: int,
                 seed: int = SUBSET_SEED) -> list[str]:
    """``paths`` when their features fit ``budget`` (``per_image_bytes`` each), else a seeded
    subset of as many as fit (at least 2, in their order)."""
    fit = max(2, budget // max(1, per_image_bytes))
    if len(paths) <= fit:
        return list(paths)
    keep = np.random.default_rng(seed).choice(len(paths), size=fit, replace=False)
    return [paths[i] for i in sorted(int(k) for k in keep)]


class FolderPass(LaneJob):
    """One folder map pass: ``kind`` "mutual" (over ``paths``: the folder), "references" (over
    ``paths``: the good images) or "text" (back to the text map, ``paths`` unused). Made on the
    GUI thread; ``cancel()`` may be called from it, the rest runs on the worker."""

    queue: ClassVar[str] = "folder"

    def __init__(self, serial: int, kind: str, paths: list[str], signals: FolderMapSignals,
                 store: MapperStore, budget: int | None = None, names: dict[str, str] | None = None):
        """``names``: path -> image id of the images whose new scores the file list shows."""
        self.serial, self.kind, self.paths, self.names = serial, kind, list(paths), dict(names or {})
        self.signals, self.store = signals, store
        self.budget = FOLDER_FEATURES_BYTES if budget is None else int(budget)
        self._cancelled = threading.Event()
        self._steps: Generator[tuple[str, int, int], None, None] | None = None
        self._pipe = None
        self._mapper = None
        self.left_out: list[str] = []         # images that could not be read (worker thread)
        self.scores: dict[str, float] = {}     # path -> image score on the new map (mutual)

    def cancel(self) -> None:
        """The user's cancel (or a newer pass): stop at the next step, install nothing."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def yields_to(self, request) -> bool:
        return True                          # the request runs first; the pass goes on after it

    def run(self, ctx: LaneContext) -> None:
        pipe = ctx.pipe
        if self.cancelled or (self._pipe is not None and pipe is not self._pipe):
            raise Cancelled                   # cancelled while waiting, or other models loaded
        if self.kind == "text":
            self._install(ctx, self.store.text_mapper(pipe))
            return
        if self._steps is None:
            self._pipe = pipe
            self._mapper = self.store.new_folder_mapper(pipe, self.kind)
            self._steps = self._fit(pipe)
        for stage, done, total in self._steps:
            self.signals.progress.emit(self.serial, stage, done, total)
            ctx.checkpoint()
            if self.cancelled:
                raise Cancelled
        self._install(ctx, self._mapper)

    def _fit(self, pipe: Pipeline) -> Generator[tuple[str, int, int], None, None]:
        """Choose the images that fit the budget (from the first image's features), then fit.
        An image that cannot be read is left out (``left_out``) and the pass goes on."""
        from ..core.engine.folder_maps import iter_fit_folder
        from ..core.errors import ImageReadError
        from ..core.io.imageio import load_image

        paths = list(self.paths)
        yield "features", 0, len(paths)
        first = None
        while first is None and paths:
            try:
                first = pipe.image_tokens(None, load_image(paths[0]), self._mapper)
            except ImageReadError as exc:
                self._leave_out(paths, 0, exc)
        paths = drawn_subset(paths, first.nbytes if first is not None else 1, self.budget)
        while True:
            reading = 0                       # iter_fit_folder says which image it reads next
            try:
                for stage, done, total in iter_fit_folder(pipe, paths, mapper=self._mapper):
                    reading = done if stage == "features" else reading
                    yield stage, done, total
                break
            except ImageReadError as exc:
                self._leave_out(paths, reading, exc)
        if self.kind == "mutual":             # every folder image has its score grid: rank them
            for i, (path, feats) in enumerate(zip(paths, self._mapper.folder, strict=True)):
                yield "ranking", i, len(paths)
                self.scores[path] = float(self._mapper.anomaly(feats).image_score)

    def _leave_out(self, paths: list[str], index: int, exc: Exception) -> None:
        log.warning("folder map: %s left out (%s)", paths[index], exc)
        self.left_out.append(paths.pop(index))

    def _install(self, ctx: LaneContext, mapper) -> None:
        self._steps = None
        ctx.pipe.mapper = mapper              # the worker owns the pipeline: no request is running
        for path, score in self.scores.items():
            if path in self.names:            # the file list's score (controller._on_prefetched)
                ctx.signals.prefetched.emit(self.names[path], score)
        info = mapper.info() if hasattr(mapper, "info") else {"model_id": mapper.model_id}
        self.signals.finished.emit(self.serial, {**info, "left_out": list(self.left_out)}, "")

    def on_cancel(self, ctx: LaneContext) -> None:
        if self.cancelled or self._steps is None or ctx.pipe is not self._pipe:
            self.abandon()
        else:
            ctx.scheduler.push_front(self)    # stopped for a request: go on after it

    def abandon(self) -> None:
        """Say that this pass ended without installing a map (GUI or worker thread)."""
        self._steps = self._mapper = None
        self.signals.finished.emit(self.serial, None, "cancelled")

    def on_error(self, ctx: LaneContext, exc: Exception, message: str) -> None:
        self._steps = self._mapper = None
        self.signals.finished.emit(self.serial, None, message)
