"""The generic undo stack: linear history, merging, amend, depth limit."""

import pytest

from zsas_gui.state.undo import UndoStack


def test_undo_redo_walks_the_history():
    st = UndoStack()
    st.push("a", 0, 1)
    st.push("b", 1, 2)
    assert st.undo_label == "b" and not st.can_redo
    entry, state = st.undo()
    assert (entry.label, state) == ("b", 1)
    assert st.undo()[1] == 0
    assert st.undo() is None
    assert st.redo()[1] == 1
    assert st.redo()[1] == 2
    assert st.redo() is None


def test_push_after_undo_drops_the_redo_branch():
    st = UndoStack()
    st.push("a", 0, 1)
    st.push("b", 1, 2)
    st.undo()
    st.push("c", 1, 5)
    assert len(st) == 2 and not st.can_redo
    assert st.undo()[1] == 1


def test_same_merge_key_folds_into_one_entry_until_closed():
    st = UndoStack()
    st.push("drag", 0, 1, merge_key="d1")
    st.push("drag", 1, 2, merge_key="d1")
    st.push("drag", 2, 3, merge_key="d1")
    assert len(st) == 1
    st.close_merge()
    st.push("drag", 3, 4, merge_key="d1")
    assert len(st) == 2
    assert st.undo()[1] == 3
    assert st.undo()[1] == 0


def test_merge_never_crosses_an_undo():
    st = UndoStack()
    st.push("s", 0, 1, merge_key="k")
    st.undo()
    st.redo()
    st.push("s", 1, 2, merge_key="k")
    assert len(st) == 2


def test_amend_replaces_a_side_and_pack_unpack_are_applied():
    st = UndoStack(pack=lambda s: ("packed", s), unpack=lambda p: p[1])
    e = st.push("a", 0, None)
    st.amend(e, "after", 7)
    assert e.after == ("packed", 7)
    assert st.undo()[1] == 0
    assert st.redo()[1] == 7
    with pytest.raises(ValueError, match="side"):
        st.amend(e, "middle", 1)


def test_depth_limit_forgets_the_oldest():
    st = UndoStack(max_depth=3)
    for i in range(5):
        st.push(str(i), i, i + 1)
    assert len(st) == 3
    states = []
    while (step := st.undo()) is not None:
        states.append(step[1])
    assert states == [4, 3, 2]
    with pytest.raises(ValueError, match="max_depth"):
        UndoStack(max_depth=0)
