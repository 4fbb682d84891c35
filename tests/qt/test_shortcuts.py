"""The action table: no key bound twice, every action wired, the help dialog lists them all."""

from PySide6.QtWidgets import QTableWidget

from zsas_gui.qt.shortcuts import ACTIONS, FOCUS_KEYS, MOUSE_HELP, HelpDialog, conflicts, normalised_keys


def test_no_two_actions_share_a_key(qapp):
    assert conflicts() == {}
    assert all(k for a in ACTIONS for k in normalised_keys(a)), "a key Qt cannot parse"
    assert len({a.id for a in ACTIONS}) == len(ACTIONS)


def test_conflicts_are_detected(qapp):
    from zsas_gui.qt.shortcuts import ActionSpec

    dup = (ActionSpec("a", "A", "Edit", ("Ctrl+K",)), ActionSpec("b", "B", "Edit", ("ctrl+k",)))
    assert conflicts(dup) == {"Ctrl+K": ["a", "b"]}


def test_every_action_has_a_handler_and_the_help_lists_every_key(make_window, qtbot):
    w = make_window(None)
    handled = {k for k, v in w._handlers().items() if v is not None}
    assert handled | {"toggle_split"} == {a.id for a in ACTIONS}
    dlg = HelpDialog(w)
    qtbot.addWidget(dlg)
    table = dlg.findChild(QTableWidget, "help_table")
    texts = {table.item(r, 2).text() for r in range(table.rowCount())}
    for a in ACTIONS:
        if a.keys:
            assert ", ".join(a.keys) in texts
    assert table.rowCount() == sum(1 for a in ACTIONS if a.keys) + len(FOCUS_KEYS) + len(MOUSE_HELP)


def test_the_user_guide_lists_every_key():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "app.md").read_text(encoding="utf-8")
    missing = [k for a in ACTIONS for k in a.keys if f"`{k}`" not in text]
    assert not missing, f"docs/app.md lacks {missing}"
