"""One image's editable state: prompts, mask, parameters, text prompts, review status, revision.

No Qt, no torch. The GUI edits a :class:`Document` through its methods; every edit that changes
what the method would compute bumps ``revision`` and is recorded on the document's undo stack.
Results computed elsewhere (the inference lane) come back through :meth:`Document.apply_result`
with the revision they were computed for; a stale revision is refused, so a result never
overwrites a newer edit.

Arrays: masks are (H, W) bool, row = y, col = x, stored read-only and never mutated in place
(every edit makes a new array, so undo entries can share them). Points are (x, y) float32 image
pixels (see :class:`~zsas_gui.core.types.Prompts`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.types import MethodParams, Prompts, TextPrompts
from ..vocabulary import DEFAULT_CLASS, MASK_SOURCES, NO_MASK, STATUSES
from .undo import DEFAULT_MAX_DEPTH, UndoEntry, UndoStack


def _frozen(mask: np.ndarray | None) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.array(mask, dtype=bool, copy=True)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W) bool, got shape {m.shape}")
    m.flags.writeable = False
    return m


@dataclass(frozen=True, eq=False)
class EditState:
    """Everything an undo step restores.

    ``prompts``: current points; ``auto``: True while the points are the automatic ones (requests
    then ask the pipeline to propose them from ``params``); ``mask``: (H, W) bool read-only or
    None (no mask yet); ``settled``: True when ``mask`` belongs to the current prompts and
    parameters (False while a refinement is due).
    """

    prompts: Prompts
    auto: bool
    params: MethodParams
    text_prompts: TextPrompts
    mask: np.ndarray | None
    mask_source: str = NO_MASK
    settled: bool = False

    def replace(self, **changes) -> EditState:
        if "mask" in changes:
            changes["mask"] = _frozen(changes["mask"])
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class _PackedState:
    state: EditState            # with mask=None
    bits: np.ndarray | None     # np.packbits of the mask
    shape: tuple[int, int] | None


def _pack(state: EditState) -> _PackedState:
    if state.mask is None:
        return _PackedState(state, None, None)
    return _PackedState(dataclasses.replace(state, mask=None), np.packbits(state.mask), state.mask.shape)


def _unpack(p: _PackedState) -> EditState:
    if p.bits is None:
        return p.state
    n = p.shape[0] * p.shape[1]
    mask = np.unpackbits(p.bits, count=n).reshape(p.shape).astype(bool)
    mask.flags.writeable = False
    return dataclasses.replace(p.state, mask=mask)


class Document:
    """The editable state of one image.

    ``image_id``: the image's relative path in the project; ``hw``: (H, W) of the image.
    """

    def __init__(self, image_id: str, hw: tuple[int, int], state: EditState | None = None,
                 status: str = "unreviewed", defect_class: str = "", image_score: float | None = None,
                 max_undo: int = DEFAULT_MAX_DEPTH):
        self.image_id = image_id
        self.hw = (int(hw[0]), int(hw[1]))
        self.state = state or EditState(Prompts.empty(), True, MethodParams(), TextPrompts(), None)
        if self.state.mask is not None and self.state.mask.shape != self.hw:
            raise ValueError(f"mask shape {self.state.mask.shape} does not match image {self.hw}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        self.status = status
        self.defect_class = defect_class
        self.image_score = image_score
        self.revision = 0
        self.dirty = False      # True when something changed since the last save
        self.undo_stack = UndoStack(max_undo, _pack, _unpack)
        self._slot: tuple[UndoEntry, str] | None = None   # the undo side the current state lives in

    # -- queries ---------------------------------------------------------------------------
    @property
    def needs_refine(self) -> bool:
        return not self.state.settled

    @property
    def mask(self) -> np.ndarray | None:
        return self.state.mask

    @property
    def prompts(self) -> Prompts:
        return self.state.prompts

    def empty_mask(self) -> np.ndarray:
        return np.zeros(self.hw, dtype=bool)

    # -- the one way state changes -----------------------------------------------------------
    def _edit(self, label: str, new: EditState, merge_key: Any = None) -> int:
        old = self.state
        self.state = new
        self.revision += 1
        self.dirty = True
        entry = self.undo_stack.push(label, old, new, merge_key)
        self._slot = (entry, "after")
        return self.revision

    def _restore(self, state: EditState, slot: tuple[UndoEntry, str]) -> None:
        self.state = state
        self.revision += 1
        self.dirty = True
        self._slot = slot

    # -- points ----------------------------------------------------------------------------
    def _set_points(self, label: str, points: np.ndarray, labels: np.ndarray, merge_key: Any = None) -> int:
        prompts = Prompts(points, labels)
        return self._edit(label, self.state.replace(prompts=prompts, auto=False, settled=False), merge_key)

    def add_point(self, x: float, y: float, positive: bool) -> int:
        """Append a point at (x, y) image pixels; returns its index."""
        p = self.state.prompts
        self._check_xy(x, y)
        pts = np.vstack([p.points, np.array([[x, y]], np.float32)])
        lab = np.append(p.labels, 1 if positive else 0)
        self._set_points("add positive point" if positive else "add negative point", pts, lab)
        return len(lab) - 1

    def move_point(self, index: int, x: float, y: float, merge_key: Any = None) -> None:
        """Move point ``index`` to (x, y); consecutive moves with the same ``merge_key`` undo as one."""
        p = self.state.prompts
        self._check_index(index)
        x = float(np.clip(x, 0, self.hw[1] - 1))
        y = float(np.clip(y, 0, self.hw[0] - 1))
        pts = p.points.copy()
        pts[index] = (x, y)
        self._set_points("move point", pts, p.labels, merge_key)

    def remove_point(self, index: int) -> None:
        p = self.state.prompts
        self._check_index(index)
        keep = np.arange(len(p)) != index
        self._set_points("remove point", p.points[keep], p.labels[keep])

    def toggle_point(self, index: int) -> None:
        """Flip a point between positive and negative."""
        p = self.state.prompts
        self._check_index(index)
        lab = p.labels.copy()
        lab[index] = 1 - lab[index]
        self._set_points("flip point", p.points, lab)

    def clear_points(self) -> None:
        self._set_points("clear points", np.zeros((0, 2), np.float32), np.zeros(0, np.int32))

    def regenerate(self) -> int:
        """Go back to the automatic points (proposed again from the current parameters)."""
        return self._edit("regenerate points", self.state.replace(auto=True, settled=False))

    def set_defaults(self, params: MethodParams, text_prompts: TextPrompts) -> bool:
        """Start a never-edited document from the session's parameters and text prompts (no undo
        step). Returns False and changes nothing once the document has been edited or has a mask."""
        if self.revision != 0 or self.state.mask is not None or not self.state.auto:
            return False
        self.state = self.state.replace(params=params, text_prompts=text_prompts)
        return True

    def end_merge(self) -> None:
        """Close a run of merged edits (mouse release, slider release)."""
        self.undo_stack.close_merge()

    # -- parameters ------------------------------------------------------------------------
    def set_params(self, params: MethodParams, merge_key: Any = None) -> int | None:
        if params == self.state.params:
            return None
        return self._edit("change parameters", self.state.replace(params=params, settled=False), merge_key)

    def set_text_prompts(self, text_prompts: TextPrompts) -> int | None:
        if text_prompts == self.state.text_prompts:
            return None
        return self._edit("change text prompts",
                          self.state.replace(text_prompts=text_prompts, settled=False))

    # -- the mask ----------------------------------------------------------------------------
    def set_mask(self, mask: np.ndarray, label: str = "edit mask", merge_key: Any = None) -> int:
        """Replace the mask by a hand edit ((H, W) bool); it stays until the next refinement."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.hw:
            raise ValueError(f"mask shape {mask.shape} does not match image {self.hw}")
        return self._edit(label, self.state.replace(mask=mask, mask_source="edited", settled=True),
                          merge_key)

    def clear_mask(self) -> int:
        return self.set_mask(self.empty_mask(), "clear mask")

    def fill_holes(self) -> int:
        return self.set_mask(fill_holes(self.mask if self.mask is not None else self.empty_mask()),
                             "fill holes")

    # -- results from the lane ----------------------------------------------------------------
    def apply_result(self, revision: int, prompts: Prompts, mask: np.ndarray,
                     image_score: float | None = None) -> bool:
        """Install a refinement computed for ``revision``. Returns False (and changes nothing)
        when the document has moved on since; the result is then stale and must be dropped."""
        if revision != self.revision:
            return False
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.hw:
            raise ValueError(f"result mask shape {mask.shape} does not match image {self.hw}")
        source = "auto" if self.state.auto else "refined"
        self.state = self.state.replace(prompts=prompts, mask=mask, mask_source=source, settled=True)
        if image_score is not None:
            self.image_score = float(image_score)
        self.dirty = True
        if self._slot is not None:
            self.undo_stack.amend(self._slot[0], self._slot[1], self.state)
        return True

    def set_image_score(self, revision: int, image_score: float) -> bool:
        if revision != self.revision:
            return False
        self.image_score = float(image_score)
        return True

    # -- undo --------------------------------------------------------------------------------
    def undo(self) -> bool:
        step = self.undo_stack.undo()
        if step is None:
            return False
        self._restore(step[1], (step[0], "before"))
        return True

    def redo(self) -> bool:
        step = self.undo_stack.redo()
        if step is None:
            return False
        self._restore(step[1], (step[0], "after"))
        return True

    # -- review ------------------------------------------------------------------------------
    def set_status(self, status: str) -> None:
        """Set the review status. ``"good"`` also empties the mask (the image is defect-free)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if status == "good" and (self.mask is None or self.mask.any()):
            self.set_mask(self.empty_mask(), "mark good")
        self.status = status
        self.dirty = True

    def accept(self) -> str:
        """Accept the mask: status ``edited`` when the points or mask were changed by hand,
        else ``accepted``. Returns the status set."""
        edited = self.state.mask_source == "edited" or not self.state.auto
        self.set_status("edited" if edited else "accepted")
        return self.status

    def set_defect_class(self, name: str) -> None:
        self.defect_class = name.strip()
        self.dirty = True

    # -- checks ------------------------------------------------------------------------------
    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.state.prompts):
            raise IndexError(f"point index {index} out of range (0..{len(self.state.prompts) - 1})")

    def _check_xy(self, x: float, y: float) -> None:
        h, w = self.hw
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"point ({x:.1f}, {y:.1f}) outside the {w}x{h} image")


# -- mask operations (pure numpy/OpenCV) ---------------------------------------------------------
def paint_stroke(mask: np.ndarray, points_xy: np.ndarray, radius: float, value: bool) -> np.ndarray:
    """A copy of ``mask`` ((H, W) bool) with a round brush of ``radius`` px drawn along the
    polyline ``points_xy`` ((N, 2) float (x, y) image pixels), set to ``value``."""
    import cv2

    out = np.array(mask, dtype=np.uint8, copy=True)
    pts = np.round(np.asarray(points_xy, np.float64).reshape(-1, 2)).astype(np.int32)
    r = max(1, round(radius))
    colour = 1 if value else 0
    if len(pts) == 1:
        cv2.circle(out, tuple(int(v) for v in pts[0]), r, colour, -1, lineType=cv2.LINE_8)
    else:
        cv2.polylines(out, [pts], False, colour, thickness=2 * r, lineType=cv2.LINE_8)
        for p in (pts[0], pts[-1]):
            cv2.circle(out, (int(p[0]), int(p[1])), r, colour, -1, lineType=cv2.LINE_8)
    return out.astype(bool)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """A copy of ``mask`` ((H, W) bool) with every background region not touching the border set."""
    from scipy.ndimage import binary_fill_holes

    return binary_fill_holes(np.asarray(mask, dtype=bool))


def state_from_record(rec: Any, hw: tuple[int, int]) -> EditState:
    """The edit state stored in an annotation record (zsas_gui.state.record.AnnotationRecord)."""
    source = (rec.provenance or {}).get("mask_source", NO_MASK) if rec.mask is not None else NO_MASK
    auto = rec.prompts is None or source == "auto"
    settled = rec.mask is not None or rec.status != "unreviewed"
    mask = rec.mask
    if mask is not None and tuple(mask.shape) != tuple(hw):
        raise ValueError(f"{rec.rel}: stored mask {mask.shape} does not match image {hw}")
    return EditState(rec.prompts if rec.prompts is not None else Prompts.empty(), auto, rec.params,
                     rec.text_prompts, _frozen(mask), source if source in (NO_MASK, *MASK_SOURCES) else "edited",
                     settled)


def document_from_record(rec: Any, hw: tuple[int, int], max_undo: int = DEFAULT_MAX_DEPTH) -> Document:
    doc = Document(rec.rel, hw, state_from_record(rec, hw), rec.status, rec.defect_class or "",
                   rec.image_score, max_undo)
    return doc


def record_fields(doc: Document, provenance: dict | None = None) -> dict[str, Any]:
    """The annotation-record fields this document owns, for ``dataclasses.replace(record, **...)``.

    ``provenance``: the record's previous provenance, updated with ``mask_source`` — models and timings of the last run are added by the caller."""
    s = doc.state
    prov = dict(provenance or {})
    if s.mask is not None and s.mask_source != NO_MASK:
        prov["mask_source"] = s.mask_source
    else:
        prov.pop("mask_source", None)
    return {"status": doc.status, "defect_class": doc.defect_class or DEFAULT_CLASS, "mask": s.mask,
            "prompts": s.prompts if len(s.prompts) or not s.auto else None,
            "params": s.params, "text_prompts": s.text_prompts, "image_score": doc.image_score,
            "provenance": prov}
