"""The controller: documents, the project store and the inference lane, between the widgets.

Widgets report gestures; the controller edits the current :class:`Document`, shows the new state,
schedules work on the lane (debounced) and saves (debounced, atomic through the project store).
It never computes a model output itself.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ..core.errors import ZsasError
from ..state.document import Document, paint_stroke
from .ahead import image_key_for
from .documents import OpenDocuments
from .lane import InferenceLane
from .lane_jobs import AheadItem, Request
from .models_state import ModelsState, ModelsStatus
from .pacing import Debounce, DragFollower
from .settings import ProjectDefaults

log = logging.getLogger(__name__)

DEBOUNCE_MS = 150        # quiet time after an edit before the refinement is requested
MAX_WAIT_MS = 150        # during continuous edits (dragging), request at least this often
SAVE_DELAY_MS = 800      # autosave after the last change
PARAM_BURST_S = 0.8      # slider moves closer together than this undo as one step
PREFETCH_AHEAD = 2


class Controller(QObject):
    document_shown = Signal()                 # the current document changed (any field)
    heatmap_changed = Signal(object)          # S (H, W) float32 in [0, 1] or None
    progress = Signal(str, int, int)          # text ("" = idle), step, total
    error = Signal(str)
    info = Signal(str)
    image_updated = Signal(str, str, object)  # rel, status, score or None
    result_shown = Signal(object, object)     # request, SegmentationResult now in the current document
    ppg_shown = Signal(object, object)        # request, its PPGResult or None (just before result_shown)

    def __init__(self, lane: InferenceLane, parent: QObject | None = None):
        super().__init__(parent)
        self.lane = lane
        self.project = None
        self.doc: Document | None = None
        self.image: np.ndarray | None = None
        self.image_key: str | None = None
        self.heatmap: np.ndarray | None = None
        self.unreadable: tuple[str, str] | None = None   # (rel, reason): the chosen image cannot be read
        self.project_defaults = ProjectDefaults()   # what never-edited images start from
        self.models = ModelsStatus(lane, self)   # the one owner of models_state
        self.dropped_results = 0
        self.shown_results = 0
        self.ahead_hits = 0                   # results applied from the lane's ahead cache
        self.drag = DragFollower(self._apply_drag)
        self._user_cancel = False
        self._shown_anomaly = None     # the AnomalyResult on screen (the pipeline caches them)
        self.docs = OpenDocuments()
        self._scores: dict[str, float] = {}
        self._order: list[str] = []
        self._param_burst: tuple[str, float, int] = ("", 0.0, 0)
        self._refine = Debounce(self.submit_now, DEBOUNCE_MS, MAX_WAIT_MS, self)
        self._save_timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.flush)
        lane.features_ready.connect(self._on_features)
        lane.progress.connect(self._on_progress)
        lane.result_ready.connect(self._on_result)
        lane.failed.connect(self._on_failed)
        lane.cancelled.connect(self._on_cancelled)
        lane.prefetched.connect(self.show_score)
        lane.idle.connect(lambda: self.progress.emit("", 0, 0))
        lane.ppg_ready.connect(self.ppg_shown)

    @property
    def models_state(self) -> ModelsState:
        return self.models.state

    # -- project and images ------------------------------------------------------------------
    def open_project(self, project) -> list[tuple[str, str, float | None]]:
        """Switch to ``project`` (a :class:`~zsas_gui.state.project.Project`); returns the rows
        (rel, status, score) for the file list."""
        self.flush()
        self.lane.prefetch([])
        self.project = project
        self.docs = OpenDocuments(project)
        self._scores.clear()
        self.doc = self.image = self.image_key = self.heatmap = self.unreadable = None
        self._order = [e.rel for e in project.images]
        self.project_defaults.load(project)
        for e in project.images:
            if project.has_record(e.rel):
                score = self.docs.stored_score(e.rel)
                if score is not None:
                    self._scores[e.rel] = score
        for msg in project.problems:
            self.error.emit(msg)
        self.document_shown.emit()
        return [(r, project.status(r), self._scores.get(r)) for r in self._order]

    def set_order(self, order: list[str]) -> None:
        """The order the file list shows (used to choose what to prefetch)."""
        self._order = list(order)

    def open_image(self, rel: str) -> bool:
        """Make ``rel`` the current image. Returns False (and says why) if it cannot be read."""
        from ..core.io.imageio import load_image

        if self.project is None or (self.doc is not None and self.doc.image_id == rel):
            return False
        self.flush()
        self.unreadable = None
        entry = self.project.entry(rel)
        try:
            key = image_key_for(entry.path)
            image = self.lane.ahead.image(str(entry.path), key)    # decoded ahead by the lane
            if image is None:
                image = load_image(entry.path)
        except (ZsasError, OSError) as exc:      # shown as unreadable: nothing acts on another image
            self.doc = self.image = self.image_key = self.heatmap = None
            self.unreadable = (rel, str(exc))
            self.error.emit(str(exc))
            self.document_shown.emit()
            self.heatmap_changed.emit(None)
            return False
        hw = image.shape[:2]
        doc, warning = self.docs.open(rel, hw, self.project_defaults.value)
        if warning:
            self.error.emit(warning)
        self.doc, self.image, self.image_key, self.heatmap = doc, image, key, None
        self._shown_anomaly = None
        if doc.image_score is None and rel in self._scores:
            doc.image_score = self._scores[rel]
        self.lane.forget_prefetched(rel)
        self.document_shown.emit()
        self.heatmap_changed.emit(None)
        self.submit_now(kind=None)
        return True

    # -- lane traffic -----------------------------------------------------------------------
    @property
    def can_compute(self) -> bool:
        return self.models.state.can_compute

    def submit_now(self, kind: str | None = "refine") -> bool:
        """Send the current document to the lane now (``kind`` None: what it needs); False: no lane."""
        self._refine.reset()
        self._user_cancel = False
        doc = self.doc
        if doc is None or self.image is None or not self.can_compute:
            return False
        if kind is None or kind == "refine":
            kind = "refine" if doc.needs_refine and self.models.state != ModelsState.HEATMAP_ONLY else "features"
        s = doc.state
        if (kind == "features" or s.auto) and self._apply_ahead(kind, doc, s):
            return True
        self.lane.submit(Request.make(kind, doc.image_id, doc.revision, self.image_key, self.image, s.params,
                                      s.text_prompts, None if s.auto else s.prompts))
        return True

    def _apply_ahead(self, kind: str, doc: Document, s) -> bool:
        """The heatmap or automatic result the lane computed ahead for exactly this image, models,
        parameters and text prompts (:meth:`AheadCache.lookup`), applied at once instead of asking
        the lane. False when there is none, or while models load (the lane's answer may differ)."""
        if not self.models.state.loaded:
            return False
        found = self.lane.ahead.lookup(self.lane.pipeline, kind, self.image_key, s.params, s.text_prompts)
        if found is None:
            return False
        self.lane.cancel()                     # anything in flight for this image is superseded
        req = Request.make(kind, doc.image_id, doc.revision, self.image_key, self.image, s.params,
                           s.text_prompts)
        self.ahead_hits += 1
        self._on_features(req, found[0])
        if found[1] is not None:
            self.ppg_shown.emit(req, found[1].ppg)     # the method panel's intermediates
            self._on_result(req, found[1].result)
        return True

    def cancel(self) -> None:
        """The user's cancel (Esc): stop the running computation, drop the pending one."""
        self._refine.reset()
        self._user_cancel = True
        self.lane.cancel()

    def _on_progress(self, req: Request, text: str, step: int, total: int) -> None:
        if self.doc is not None and req.image_id == self.doc.image_id:
            self.progress.emit(text, step, total)

    def _on_features(self, req: Request, anomaly) -> None:
        doc = self.docs.get(req.image_id)
        if anomaly is self._shown_anomaly and doc is self.doc:
            return                  # the cached map again (every refinement reports it): nothing new
        score = float(anomaly.image_score)
        self._scores[req.image_id] = score
        if doc is not None and doc.state.text_prompts == req.text_prompts:
            doc.image_score = score
        self.image_updated.emit(req.image_id, self.docs.status(req.image_id), score)
        if doc is self.doc and doc is not None and doc.state.text_prompts == req.text_prompts:
            self._shown_anomaly = anomaly
            self.heatmap = anomaly.normalized
            self.heatmap_changed.emit(self.heatmap)
        if req.kind == "features":
            self._prefetch_next()

    def _on_result(self, req: Request, result) -> None:
        doc = self.docs.get(req.image_id)
        if doc is None or not doc.apply_result(req.revision, result.prompts, result.pred_mask,
                                               result.anomaly.image_score):
            self.dropped_results += 1
            self.drag.settled(req.image_id, req.revision)
            return
        self.shown_results += 1
        self.docs.note_provenance(req.image_id, result.provenance)
        if result.gated:
            self.info.emit(f"{req.image_id}: image score below the gate: predicted normal (empty mask)")
        if doc is self.doc:
            self.result_shown.emit(req, result)
            self.document_shown.emit()
        self._save_timer.start()
        self.drag.settled(req.image_id, req.revision)
        self._prefetch_next()

    def _on_failed(self, req: Request | None, message: str) -> None:
        self.progress.emit("", 0, 0)
        self.error.emit(message)
        if req is not None:
            self.drag.settled(req.image_id, req.revision)

    def _on_cancelled(self, req: Request) -> None:
        self.drag.settled(req.image_id, req.revision)
        if self._user_cancel:
            self._user_cancel = False
            self.progress.emit("", 0, 0)
            self.info.emit("computation cancelled (edit, undo or press Regenerate to run it again)")
            self.document_shown.emit()

    def show_score(self, rel: str, score: float | None) -> None:
        """``rel``'s image score for the file list (None: the map that gave it is not in use)."""
        self._scores.pop(rel, None)
        if score is not None:
            self._scores[rel] = score
        self.image_updated.emit(rel, self.docs.status(rel), score)

    def _prefetch_next(self) -> None:
        if self.doc is None or self.doc.image_id not in self._order or not self.can_compute:
            return
        i = self._order.index(self.doc.image_id)
        s = self.doc.state
        params, text = self.project_defaults.value or (s.params, s.text_prompts)
        items = [AheadItem(rel, str(self.project.entry(rel).path), text, params)
                 for rel in self._order[i + 1:i + 1 + PREFETCH_AHEAD]]
        self.lane.prefetch(items)

    def _remember_defaults(self) -> None:
        """New images start from the parameters and text prompts last edited (saved by :meth:`flush`)."""
        self.project_defaults.remember(self.doc.state.params, self.doc.state.text_prompts)

    # -- edits --------------------------------------------------------------------------------
    def _edited(self, refine: bool = True) -> None:
        self.document_shown.emit()
        self._save_timer.start()
        if refine:
            self._refine.poke()

    def add_point(self, x: float, y: float, positive: bool) -> None:
        if self.doc is not None:
            self.doc.add_point(x, y, positive)
            self._edited()

    def move_point(self, index: int, x: float, y: float) -> None:
        """A dragged point moved (paced by :class:`~.pacing.DragFollower`)."""
        if self.doc is not None and index < len(self.doc.prompts):
            self.drag.move(self.doc.image_id, index, x, y)

    def _apply_drag(self, image_id: str, index: int, x: float, y: float) -> tuple[str, int] | None:
        doc = self.doc
        if doc is None or image_id != doc.image_id or index >= len(doc.prompts):
            return None
        doc.move_point(index, x, y, merge_key=("drag", index))
        self.document_shown.emit()
        self._save_timer.start()
        return (doc.image_id, doc.revision) if self.submit_now() else None

    def end_drag(self, _index: int) -> None:
        if self.doc is not None:
            self.drag.end()
            self.doc.end_merge()
            if self.doc.needs_refine:
                self.submit_now()

    def remove_point(self, index: int | None) -> None:
        if self.doc is not None and index is not None and index < len(self.doc.prompts):
            self.doc.remove_point(index)
            self._edited()

    def regenerate(self) -> None:
        if self.doc is not None:
            self.doc.regenerate()
            self._edited()

    def clear_points(self) -> None:
        if self.doc is not None and len(self.doc.prompts):
            self.doc.clear_points()
            self._edited()

    def set_params(self, params, name: str) -> None:
        if self.doc is None:
            return
        last_name, last_t, burst = self._param_burst
        now = time.monotonic()
        if name != last_name or now - last_t > PARAM_BURST_S:
            burst += 1
            self.doc.end_merge()
        self._param_burst = (name, now, burst)
        if self.doc.set_params(params, merge_key=("param", name, burst)) is not None:
            self._remember_defaults()
            self._edited()

    def set_text_prompts(self, text_prompts) -> None:
        if self.doc is not None and self.doc.set_text_prompts(text_prompts) is not None:
            self._remember_defaults()
            self._edited()
            self.submit_now()

    def paint(self, points_xy: np.ndarray, radius: float, value: bool) -> None:
        """A finished brush (``value`` True) or eraser stroke along (N, 2) (x, y) image pixels."""
        if self.doc is None:
            return
        base = self.doc.mask if self.doc.mask is not None else self.doc.empty_mask()
        self.doc.set_mask(paint_stroke(base, points_xy, radius, value), "paint" if value else "erase")
        self._edited(refine=False)

    def fill_holes(self) -> None:
        if self.doc is not None:
            self.doc.fill_holes()
            self._edited(refine=False)

    def clear_mask(self) -> None:
        if self.doc is not None:
            self.doc.clear_mask()
            self._edited(refine=False)

    def undo(self) -> None:
        if self.doc is not None and self.doc.undo():
            self._restored()

    def redo(self) -> None:
        if self.doc is not None and self.doc.redo():
            self._restored()

    def _restored(self) -> None:
        self.document_shown.emit()
        self._save_timer.start()
        self.submit_now(kind=None)

    # -- review --------------------------------------------------------------------------------
    def _reviewed(self) -> None:
        self.document_shown.emit()
        self.image_updated.emit(self.doc.image_id, self.doc.status, self.doc.image_score)
        self.flush()

    def accept(self) -> None:
        if self.doc is not None:
            if self.doc.mask is None:
                self.error.emit("nothing to accept yet: no mask (paint one, or mark the image good)")
                return
            self.doc.accept()
            self._reviewed()

    def reject(self) -> None:
        if self.doc is not None:
            self.doc.set_status("rejected")
            self._reviewed()

    def mark_good(self) -> None:
        if self.doc is not None:
            self.doc.set_status("good")
            self._reviewed()

    def set_defect_class(self, name: str) -> None:
        if self.doc is not None and name != self.doc.defect_class:
            self.doc.set_defect_class(name)
            self._save_timer.start()

    # -- saving ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Save every document changed since its last save (atomic, through the project)."""
        self._save_timer.stop()
        if self.project is None:
            return
        for message in self.docs.flush():
            self.error.emit(message)
        problem = self.project_defaults.save(self.project)
        if problem:
            self.error.emit(problem)
