"""The folder map's pass on the lane (ALGORITHM.md §1b; the app's "heatmap from" selector,
folder_map_panel.py): build a mutual or references map for the open folder, then make it the
pipeline's map; or go back to the text map.

The pass runs in the lane's ``folder`` queue (after interactive requests, before work ahead). It
fits a NEW mapper beside the one in use (``iter_fit_folder(pipe, paths, mapper=...)``), one step per
image encoded and per image scored; between steps it stops for an interactive request (the
request runs on the map in use) and goes on where it was (the generator is kept, nothing is
redone). Only a finished pass replaces ``pipe.mapper``: a cancelled or failed one leaves the
pipeline's map as it was. The features go through the pipeline's caches (memory and disk: a
folder seen before is not encoded again). A mutual or references pass ends by ranking the folder:
each image's score on the new map goes to the file list (the ``scored`` signal) as the map is
installed, so the list never mixes the old map's scores with the new one's. An image that cannot
be read is left out and named. The pass's backbone (the CLIP tower or a timm model with a local
weights file) and τ mode (relative, or the folder scale) are the project's options; a change of
the τ mode alone re-scales the map in use (``rescale``) instead of fitting it again.

Memory (docs/decisions.md D34): a pass holds at most :data:`FOLDER_FEATURES_BYTES` of features.
A folder whose features would not fit is drawn on through a seeded subset of as many images as
fit (the other images are scored against it, as any image outside the folder is).
"""

from __future__ import annotations

import copy
import logging
import threading
import weakref
from collections.abc import Generator
from pathlib import Path
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

    progress = Signal(int, str, int, int)      # pass serial, stage (features/scoring/ranking), done, total
    scored = Signal(int, object)               # pass serial, {image id: score on the installed map}
    finished = Signal(int, object, str)        # pass serial, mapper info (None: not installed), message


class MapperStore:
    """Per pipeline: its own text map (kept while a folder map is in use) and the folder maps'
    backbones (the loaded CLIP image tower, or a timm model with its weights file), each made
    once (a weights file is loaded again when it changed on disk). Worker thread only."""

    def __init__(self) -> None:
        self._text: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._backbones: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()

    def text_mapper(self, pipe: Pipeline):
        """The mapper ``pipe`` was built with (its text map)."""
        return self._text.setdefault(pipe, pipe.mapper)

    def new_folder_mapper(self, pipe: Pipeline, kind: str, backbone: str = "clip", weights: str = ""):
        """A fresh (unfitted) ``mutual`` or ``references`` mapper on ``backbone`` (``clip``: the
        CLIP tower; ``timm:ARCH`` with the state dict file ``weights``; core's
        ``load_backbone`` parses and loads them: a bad file is its clear error, naming the file)."""
        from ..core.maps.folder_select import make_folder_mapper

        self.text_mapper(pipe)
        made = self._backbones.setdefault(pipe, {})
        key = (backbone, weights, _file_state(weights))
        if key not in made:
            device = getattr(pipe.sam, "device", "cpu")
            made.clear()                        # one backbone besides the pipeline's models
            made[key] = load_weighted_backbone(backbone, weights, pipe.clip, device)
        return make_folder_mapper(kind, made[key])


def load_weighted_backbone(backbone: str, weights: str, clip, device):
    """core's ``load_backbone``; a weights file its loader fails on in another way than its own
    error (a damaged .pth can raise a bare KeyError in torch's unpickler) is a user error naming
    the file, like the errors core gives."""
    from ..core.errors import CheckpointError, ZsasError
    from ..core.maps.backbones import load_backbone

    try:
        return load_backbone(None if backbone == "clip" else backbone, weights or None, clip, device=device)
    except ZsasError:
        raise
    except Exception as exc:  # any loader failure on the user's file
        if not weights:
            raise
        raise CheckpointError(f"{weights}: cannot load it as the weights of {backbone} "
                              f"({type(exc).__name__}: {exc}); give a timm state dict "
                              "(.safetensors, or .pth)") from exc


def _file_state(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a weights file (None for none, or ``random``)."""
    try:
        st = Path(path).stat() if path else None
    except OSError:
        return None
    return None if st is None else (st.st_size, st.st_mtime_ns)


def rescaled(mapper, absolute: bool):
    """``mapper`` with results on the folder scale (``absolute``) or per image; a folder mapper
    is copied (its fit, features and calibration shared, never refitted), the text map is
    returned as it is (it has the relative τ only)."""
    if not hasattr(mapper, "absolute") or mapper.absolute == absolute:
        return mapper
    out = copy.copy(mapper)
    out.absolute = bool(absolute)
    return out


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
    ``paths``: the good images), "text" (back to the text map) or "rescale" (the folder map in
    use with another τ scale, nothing fitted again; ``paths`` unused for the last two).
    ``backbone``/``weights``: the folder map's features (:meth:`MapperStore.new_folder_mapper`);
    ``absolute``: the τ mode (the map's results carry the folder scale). Made on the GUI thread;
    ``cancel()`` may be called from it, the rest runs on the worker."""

    queue: ClassVar[str] = "folder"

    def __init__(self, serial: int, kind: str, paths: list[str], signals: FolderMapSignals,
                 store: MapperStore, budget: int | None = None, names: dict[str, str] | None = None,
                 backbone: str = "clip", weights: str = "", absolute: bool = False):
        """``names``: path -> image id of the images whose new scores the file list shows."""
        self.serial, self.kind, self.paths, self.names = serial, kind, list(paths), dict(names or {})
        self.signals, self.store = signals, store
        self.backbone, self.weights, self.absolute = backbone, weights, bool(absolute)
        self.budget = FOLDER_FEATURES_BYTES if budget is None else int(budget)
        self._cancelled = threading.Event()
        self._steps: Generator[tuple[str, int, int], None, None] | None = None
        self._pipe = None
        self._mapper = None
        self.left_out: list[str] = []         # images that could not be read (worker thread)
        self.scores: dict[str, float] = {}     # path -> image score on the new map

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
        if self.kind == "rescale":
            self._install(ctx, rescaled(pipe.mapper, self.absolute))
            return
        if self._steps is None:
            self._pipe = pipe
            self._mapper = self.store.new_folder_mapper(pipe, self.kind, self.backbone, self.weights)
            self._steps = self._fit(pipe)
        for stage, done, total in self._steps:
            self.signals.progress.emit(self.serial, stage, done, total)
            ctx.checkpoint()
            if self.cancelled:
                raise Cancelled
        self._mapper.absolute = self.absolute     # the τ mode at the end (the user may change it meanwhile)
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
        yield from self._rank(pipe, paths)

    def _rank(self, pipe: Pipeline, fitted: list[str]) -> Generator[tuple[str, int, int], None, None]:
        """Score every image of the folder (``names``) on the new map, for the file list: a
        mutual map's own images from the features it holds, the others (the good images' pass,
        images outside a drawn subset) encoded through the pipeline's caches. An image that
        cannot be read gets no score."""
        from ..core.errors import ImageReadError
        from ..core.io.imageio import load_image

        held = dict(zip(fitted, self._mapper.folder, strict=True)) if self.kind == "mutual" else {}
        todo = list(dict.fromkeys([*held, *self.names]))
        for i, path in enumerate(todo):
            yield "ranking", i, len(todo)
            feats = held.get(path)
            if feats is None:
                try:
                    feats = pipe.image_tokens(None, load_image(path), self._mapper)
                except ImageReadError:
                    continue
            self.scores[path] = float(self._mapper.anomaly(feats).image_score)
        yield "ranking", len(todo), len(todo)

    def _leave_out(self, paths: list[str], index: int, exc: Exception) -> None:
        log.warning("folder map: %s left out (%s)", paths[index], exc)
        self.left_out.append(paths.pop(index))

    def _install(self, ctx: LaneContext, mapper) -> None:
        self._steps = None
        ctx.pipe.mapper = mapper              # the worker owns the pipeline: no request is running
        scores = {self.names[p]: v for p, v in self.scores.items() if p in self.names}
        if scores:
            self.signals.scored.emit(self.serial, scores)   # before finished: the list, then the rest
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
