"""The document: edits bump the revision and are undoable; stale results are refused."""

import numpy as np
import pytest

from zsas_gui.core.types import MethodParams, Prompts, TextPrompts
from zsas_gui.state.document import (
    Document,
    EditState,
    fill_holes,
    paint_stroke,
    record_fields,
    state_from_record,
)

HW = (40, 60)


def _result_mask(x0=10, x1=20):
    m = np.zeros(HW, bool)
    m[5:15, x0:x1] = True
    return m


def _auto_prompts():
    return Prompts(np.array([[15, 10], [40, 30]], np.float32), np.array([1, 0]))


def test_new_document_is_auto_and_needs_a_refinement():
    doc = Document("a.png", HW)
    assert doc.state.auto and doc.needs_refine and doc.mask is None and doc.revision == 0


def test_apply_result_for_the_current_revision_settles_the_document():
    doc = Document("a.png", HW)
    assert doc.apply_result(0, _auto_prompts(), _result_mask(), image_score=0.8)
    assert not doc.needs_refine and doc.state.mask_source == "auto" and doc.image_score == 0.8
    assert len(doc.prompts) == 2
    assert not doc.mask.flags.writeable


def test_stale_result_is_refused():
    doc = Document("a.png", HW)
    doc.apply_result(0, _auto_prompts(), _result_mask())
    rev = doc.add_point(1, 1, positive=True)
    assert rev is not None and doc.revision == 1 and doc.needs_refine
    assert not doc.apply_result(0, _auto_prompts(), _result_mask(30, 40))
    assert doc.mask[5, 10] and not doc.mask[5, 35]


def test_point_edits_switch_to_manual_and_undo_restores_points_and_mask():
    doc = Document("a.png", HW)
    doc.apply_result(0, _auto_prompts(), _result_mask())
    doc.add_point(50, 5, positive=False)
    assert not doc.state.auto and len(doc.prompts) == 3 and doc.prompts.labels[2] == 0
    new_mask = _result_mask(25, 35)
    assert doc.apply_result(doc.revision, doc.prompts, new_mask)
    assert doc.state.mask_source == "refined"
    assert doc.undo()
    assert doc.state.auto and len(doc.prompts) == 2 and doc.mask[5, 10] and not doc.needs_refine
    assert doc.redo()
    # the refined mask that arrived after the edit was recorded with it
    assert len(doc.prompts) == 3 and doc.mask[5, 30] and not doc.mask[5, 10] and not doc.needs_refine


def test_redo_of_an_edit_whose_result_never_came_needs_a_refinement():
    doc = Document("a.png", HW)
    doc.apply_result(0, _auto_prompts(), _result_mask())
    doc.remove_point(1)
    doc.undo()
    doc.redo()
    assert len(doc.prompts) == 1 and doc.needs_refine


def test_drag_moves_merge_into_one_undo_step():
    doc = Document("a.png", HW)
    doc.apply_result(0, _auto_prompts(), _result_mask())
    for x in range(16, 26):
        doc.move_point(0, x, 10, merge_key=("drag", 1))
    doc.end_merge()
    assert doc.prompts.points[0, 0] == 25 and doc.revision == 10
    doc.undo()
    assert doc.prompts.points[0, 0] == 15
    assert len(doc.undo_stack) == 1


def test_move_clamps_into_the_image_and_bad_indices_raise():
    doc = Document("a.png", HW)
    doc.add_point(5, 5, True)
    doc.move_point(0, -10, 999)
    assert tuple(doc.prompts.points[0]) == (0.0, 39.0)
    with pytest.raises(IndexError):
        doc.remove_point(3)
    with pytest.raises(ValueError, match="outside"):
        doc.add_point(60, 0, True)


def test_toggle_clear_and_regenerate():
    doc = Document("a.png", HW)
    doc.apply_result(0, _auto_prompts(), _result_mask())
    doc.toggle_point(0)
    assert doc.prompts.labels[0] == 0
    doc.clear_points()
    assert len(doc.prompts) == 0 and not doc.state.auto
    doc.regenerate()
    assert doc.state.auto and doc.needs_refine


def test_parameter_and_text_changes_are_undoable_and_no_op_changes_are_not_recorded():
    doc = Document("a.png", HW)
    doc.apply_result(0, _auto_prompts(), _result_mask())
    assert doc.set_params(MethodParams()) is None
    doc.set_params(MethodParams(tau=0.7), merge_key="tau")
    doc.set_params(MethodParams(tau=0.8), merge_key="tau")
    doc.set_text_prompts(TextPrompts(object_name="tile"))
    assert doc.needs_refine and len(doc.undo_stack) == 2
    doc.undo()
    assert doc.state.text_prompts.object_name == "object" and doc.state.params.tau == 0.8
    doc.undo()
    assert doc.state.params.tau == 0.5 and not doc.needs_refine


def test_paint_fill_clear_are_undoable_hand_edits():
    doc = Document("a.png", HW)
    ring = paint_stroke(doc.empty_mask(), np.array([[30, 20]]), 10, True)
    ring = paint_stroke(ring, np.array([[30, 20]]), 4, False)
    doc.set_mask(ring, "paint")
    assert doc.state.mask_source == "edited" and doc.state.settled and not doc.mask[20, 30]
    doc.fill_holes()
    assert doc.mask[20, 30]
    doc.clear_mask()
    assert not doc.mask.any()
    doc.undo()
    doc.undo()
    assert not doc.mask[20, 30] and doc.mask[20, 38]
    with pytest.raises(ValueError, match="shape"):
        doc.set_mask(np.zeros((3, 3), bool))


def test_paint_stroke_draws_a_polyline_and_leaves_the_input_alone():
    m = np.zeros(HW, bool)
    out = paint_stroke(m, np.array([[5, 5], [50, 5]], np.float32), 2, True)
    assert not m.any() and out[5, 5] and out[5, 30] and out[5, 50] and not out[20, 30]
    assert fill_holes(np.pad(np.ones((3, 3), bool), 1, constant_values=False)).sum() == 9


def test_review_status_accept_good():
    doc = Document("a.png", HW)
    doc.apply_result(0, _auto_prompts(), _result_mask())
    assert doc.accept() == "accepted"
    doc.add_point(1, 1, True)
    assert doc.accept() == "edited"
    doc.set_status("good")
    assert doc.status == "good" and not doc.mask.any()
    doc.set_defect_class("  crack ")
    assert doc.defect_class == "crack"
    with pytest.raises(ValueError, match="status"):
        doc.set_status("maybe")


class _Rec:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_record_round_trip_of_the_fields_the_document_owns():
    mask = _result_mask()
    rec = _Rec(rel="a.png", status="edited", defect_class="crack", mask=mask, prompts=_auto_prompts(),
               params=MethodParams(tau=0.6), text_prompts=TextPrompts(object_name="tile"),
               image_score=0.4, provenance={"mask_source": "refined", "models": "x"})
    st = state_from_record(rec, HW)
    assert isinstance(st, EditState) and st.settled and not st.auto and st.mask_source == "refined"
    doc = Document("a.png", HW, st, rec.status, rec.defect_class, rec.image_score)
    f = record_fields(doc, rec.provenance)
    assert f["status"] == "edited" and f["params"].tau == 0.6 and f["provenance"]["models"] == "x"
    assert f["provenance"]["mask_source"] == "refined" and np.array_equal(f["mask"], mask)
    fresh = _Rec(rel="b.png", status="unreviewed", defect_class="", mask=None, prompts=None,
                 params=MethodParams(), text_prompts=TextPrompts(), image_score=None, provenance={})
    st2 = state_from_record(fresh, HW)
    assert st2.auto and not st2.settled and st2.mask is None


def test_defaults_apply_only_to_a_never_edited_document():
    doc = Document("a.png", HW)
    assert doc.set_defaults(MethodParams(k_pos=5), TextPrompts(object_name="tile"))
    assert doc.state.params.k_pos == 5 and doc.revision == 0 and not doc.undo_stack.can_undo
    doc.add_point(1, 1, True)
    assert not doc.set_defaults(MethodParams(), TextPrompts())
    assert doc.state.params.k_pos == 5
