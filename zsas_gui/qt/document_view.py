"""The current document (or the unreadable image chosen instead) onto the window's widgets:
canvas, parameters, review box, actions, title, file list. Called on every ``document_shown``."""

from __future__ import annotations

from .models_state import ModelsState
from .shortcuts import spec

#: Actions that act on the current image: disabled while no readable image is shown.
DOCUMENT_ACTIONS = ("undo", "redo", "delete_point", "regenerate", "clear_points", "tool_points", "tool_brush",
                    "tool_eraser", "brush_bigger", "brush_smaller", "fill_holes", "clear_mask", "accept",
                    "reject", "mark_good", "defect_class")


NO_SAM_TIP = ("Points need a SAM model, and none is loaded: paint the mask with the brush (B), "
              "or get the models (File → Models…)")


def show_document(window) -> None:
    """Show ``window.controller``'s current document, or what stands in for it."""
    c, a = window.controller, window.actions
    doc = c.doc
    for key in DOCUMENT_ACTIONS:
        a[key].setEnabled(doc is not None)
    no_sam = c.models_state in (ModelsState.MISSING, ModelsState.HEATMAP_ONLY)
    a["tool_points"].setEnabled(doc is not None and not no_sam)
    points = spec("tool_points")
    a["tool_points"].setToolTip(NO_SAM_TIP if no_sam else f"{points.tip} ({', '.join(points.keys)})")
    if no_sam and window.canvas.tool == "points":
        window.set_tool("brush")
    for box in (window.review_box, window.tools_box, window.params_panel):
        box.setEnabled(doc is not None)
    root = c.project.root.name if c.project else ""
    if doc is None:
        _show_no_document(window, c.unreadable, root)
        return
    window.canvas_overlay.clear("error")
    if window.canvas.image_hw != doc.hw or window._shown_id != doc.image_id:
        window.canvas.set_image(c.image)
        window._shown_id = doc.image_id
    s = doc.state
    window.canvas.set_points(s.prompts)
    window.canvas.set_mask(s.mask)
    window.canvas.set_tau(s.params.tau)
    window.params_panel.set_params(s.params)
    window.params_panel.set_manual(not s.auto)
    if s.text_prompts != window.text_box.text_prompts():
        window.text_box.set_text_prompts(s.text_prompts)
    score = "" if doc.image_score is None else f"score {doc.image_score:.3f}"
    pending = ""
    if c.models_state == ModelsState.HEATMAP_ONLY:
        pending = "no SAM model loaded: paint the mask by hand"
    elif doc.needs_refine and c.can_compute:
        if doc.mask is None:               # the first result is on its way: nothing is out of date
            pending = "computing the first result…"
        else:
            pending = "refining…" if window.lane.busy else "mask out of date (edit or Regenerate)"
    window.review_box.show_document(doc.status, doc.defect_class, " · ".join(t for t in (score, pending) if t))
    a["undo"].setEnabled(doc.undo_stack.can_undo)
    a["redo"].setEnabled(doc.undo_stack.can_redo)
    a["undo"].setText(f"&Undo {doc.undo_stack.undo_label or ''}".strip())
    a["redo"].setText(f"&Redo {doc.undo_stack.redo_label or ''}".strip())
    window.setWindowTitle(f"{doc.image_id} — {root} — zsas-gui")
    window.file_list.update_image(doc.image_id, doc.status, doc.image_score)


def _show_no_document(window, unreadable: tuple[str, str] | None, root: str) -> None:
    """No image, or (``unreadable``: (rel, reason)) one that cannot be read: a placeholder that
    says why; nothing can act on another image."""
    window._shown_id = None
    window.canvas.set_image(None)
    window.review_box.show_document(None, "")
    if unreadable is None:
        window.canvas_overlay.clear("error")
        window.setWindowTitle("zsas-gui")
        return
    rel, reason = unreadable
    window.canvas_overlay.show_message(f"Cannot read {rel}\n\n{reason}\n\nFix or remove the file; "
                                       "the other images are not affected.", "error")
    window.setWindowTitle(f"{rel} (unreadable) — {root} — zsas-gui")
    window.file_list.update_image(rel, "unreadable")
