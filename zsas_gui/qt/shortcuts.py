"""The one table of actions and keys: menus, toolbars and the help dialog are built from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)


@dataclass(frozen=True)
class ActionSpec:
    """One user action. ``keys``: Qt key sequences in portable text (``"Ctrl+Shift+Z"``);
    ``icon``: a qtawesome icon name (created only after the QApplication exists)."""

    id: str
    text: str
    menu: str
    keys: tuple[str, ...] = ()
    tip: str = ""
    icon: str | None = None
    checkable: bool = False


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_folder", "&Open folder…", "File", ("Ctrl+O",), "Open a folder of images",
               "fa5s.folder-open"),
    ActionSpec("export", "E&xport…", "File", ("Ctrl+E",),
               "Export the reviewed annotations (MVTec, anomalib Folder, COCO, labelme, YOLO, PNG)",
               "fa5s.file-export"),
    ActionSpec("models", "&Models…", "File", ("Ctrl+M",), "Model manager: download or pick models",
               "fa5s.cubes"),
    ActionSpec("quit", "&Quit", "File", ("Ctrl+Q",), "Close the app"),
    ActionSpec("undo", "&Undo", "Edit", ("Ctrl+Z",), "Undo the last point, parameter or paint edit",
               "fa5s.undo"),
    ActionSpec("redo", "&Redo", "Edit", ("Ctrl+Shift+Z",), "Redo", "fa5s.redo"),
    ActionSpec("delete_point", "&Delete point", "Edit", ("Delete",),
               "Remove the point under the cursor (or Ctrl+click it)"),
    ActionSpec("regenerate", "Re&generate points", "Edit", ("R",),
               "Go back to the automatic points from the current parameters", "fa5s.magic"),
    ActionSpec("clear_points", "Clear points", "Edit", ("Shift+R",), "Remove every point"),
    ActionSpec("cancel", "&Cancel computation", "Edit", ("Esc",), "Stop the running computation",
               "fa5s.stop-circle"),
    ActionSpec("tool_points", "&Points tool", "Tools", ("P",),
               "Left click: positive point, right click: negative, drag: move", "fa5s.crosshairs", True),
    ActionSpec("tool_brush", "&Brush", "Tools", ("B",), "Paint the mask", "fa5s.paint-brush", True),
    ActionSpec("tool_eraser", "&Eraser", "Tools", ("E",), "Erase the mask", "fa5s.eraser", True),
    ActionSpec("brush_bigger", "Bigger brush", "Tools", ("]",), "Increase the brush size"),
    ActionSpec("brush_smaller", "Smaller brush", "Tools", ("[",), "Decrease the brush size"),
    ActionSpec("fill_holes", "&Fill holes", "Tools", ("F",), "Fill holes inside the mask", "fa5s.fill-drip"),
    ActionSpec("clear_mask", "C&lear mask", "Tools", ("Shift+Delete",), "Empty the mask", "fa5s.trash-alt"),
    ActionSpec("fit", "&Fit to window", "View", ("Ctrl+0",), "Show the whole image", "fa5s.expand"),
    ActionSpec("actual_size", "&1:1", "View", ("Ctrl+1",), "One image pixel per screen pixel"),
    ActionSpec("zoom_in", "Zoom &in", "View", ("Ctrl+=",), "Zoom in", "fa5s.search-plus"),
    ActionSpec("zoom_out", "Zoom &out", "View", ("Ctrl+-",), "Zoom out", "fa5s.search-minus"),
    ActionSpec("toggle_heatmap", "&Heatmap", "View", ("H",), "Show or hide the anomaly heatmap", None, True),
    ActionSpec("toggle_contour", "τ &contour", "View", ("T",), "Show or hide the τ contour", None, True),
    ActionSpec("toggle_mask", "&Mask", "View", ("M",), "Show or hide the mask", None, True),
    ActionSpec("toggle_points", "P&oints", "View", ("O",), "Show or hide the points", None, True),
    ActionSpec("toggle_split", "&Split view", "View", ("V",),
               "Heatmap on the left part of the image only (drag the split slider)", None, True),
    ActionSpec("toggle_gt", "&Ground truth", "View", ("Shift+G",),
               "Show or hide the ground-truth outline (folders with masks, e.g. MVTec AD)", None, True),
    ActionSpec("toggle_method", "Method &panel", "View", ("Shift+M",),
               "The method step by step: heatmap, region, ring, similarity, points, stages 1-3",
               "fa5s.layer-group", True),
    ActionSpec("accept", "&Accept", "Review", ("A",), "Accept the mask", "fa5s.check"),
    ActionSpec("reject", "&Reject", "Review", ("X",), "Reject: the proposal is wrong", "fa5s.times"),
    ActionSpec("mark_good", "Mark &good", "Review", ("G",), "The image is defect-free (empty mask)",
               "fa5s.thumbs-up"),
    ActionSpec("defect_class", "Defect &class…", "Review", ("C",), "Set the defect class", "fa5s.tag"),
    ActionSpec("auto_advance", "Auto-&advance after review", "Review", (),
               "After accept, reject or good, go to the next unreviewed image", None, True),
    ActionSpec("next_image", "&Next image", "Review", ("PgDown",), "Go to the next image", "fa5s.arrow-right"),
    ActionSpec("prev_image", "&Previous image", "Review", ("PgUp",), "Go to the previous image",
               "fa5s.arrow-left"),
    ActionSpec("next_unreviewed", "Next &unreviewed", "Review", ("U",), "Jump to the next unreviewed image",
               "fa5s.forward"),
    ActionSpec("help", "&Keyboard and mouse…", "Help", ("F1",), "All shortcuts", "fa5s.question-circle"),
)

MENUS = ("File", "Edit", "Tools", "View", "Review", "Help")

#: Mouse gestures, listed in the help dialog under the key table.
MOUSE_HELP = (
    ("Left click", "add a positive point (points tool)"),
    ("Right click", "add a negative point (points tool)"),
    ("Drag a point", "move it"),
    ("Ctrl+click a point", "remove it"),
    ("Wheel", "zoom around the cursor"),
    ("Drag empty space / middle drag / Space+drag", "pan"),
    ("Left drag (brush / eraser)", "paint / erase the mask"),
)

#: Keys that act only while a given widget has focus (that widget takes them from the window's
#: shortcuts): (where, keys, effect); listed in the help dialog after the actions.
FOCUS_KEYS = (
    ("Method strip", "Left, Right", "previous / next step of the method"),
    ("Method strip", "Esc", "back to the normal view (instead of Cancel computation)"),
)


def spec(action_id: str) -> ActionSpec:
    for a in ACTIONS:
        if a.id == action_id:
            return a
    raise KeyError(f"no action {action_id!r}")


def normalised_keys(a: ActionSpec) -> list[str]:
    """Key sequences of an action as Qt reads them (portable text), for conflict checks."""
    return [QKeySequence(k).toString(QKeySequence.SequenceFormat.PortableText) for k in a.keys]


def conflicts(actions=ACTIONS) -> dict[str, list[str]]:
    """Keys bound to more than one action: {key: [action ids]} (empty when the table is clean)."""
    seen: dict[str, list[str]] = {}
    for a in actions:
        for k in normalised_keys(a):
            seen.setdefault(k, []).append(a.id)
    return {k: ids for k, ids in seen.items() if len(ids) > 1}


def make_actions(parent, handlers: dict[str, Callable[..., None]]) -> dict[str, QAction]:
    """Create one QAction per table entry, with keys, tips and (qtawesome) icons, wired to
    ``handlers[id]`` (checkable actions receive the checked state)."""
    import qtawesome as qta  # only here: a QApplication exists by now
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    pal = QApplication.palette()
    colour = pal.color(QPalette.ColorRole.ButtonText).name()
    disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText).name()
    out = {}
    for a in ACTIONS:
        act = QAction(a.text, parent)
        act.setObjectName(f"action_{a.id}")
        if a.keys:
            act.setShortcuts([QKeySequence(k) for k in a.keys])
        tip = a.tip + (f" ({', '.join(a.keys)})" if a.keys else "")
        act.setToolTip(tip)
        act.setStatusTip(a.tip)
        act.setCheckable(a.checkable)
        if a.icon:
            act.setIcon(qta.icon(a.icon, color=colour, color_disabled=disabled))
        fn = handlers.get(a.id)
        if fn is not None:
            if a.checkable:
                act.toggled.connect(fn)
            else:
                act.triggered.connect(lambda _checked=False, f=fn: f())
        out[a.id] = act
    return out


class HelpDialog(QDialog):
    """Every action with its keys, then the mouse gestures."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        lay = QVBoxLayout(self)
        rows = [(a.menu, a.text.replace("&", ""), ", ".join(a.keys)) for a in ACTIONS if a.keys]
        rows += [(where, what, keys) for where, keys, what in FOCUS_KEYS]
        rows += [("Mouse", what, gesture) for gesture, what in MOUSE_HELP]
        table = QTableWidget(len(rows), 3, self)
        table.setObjectName("help_table")
        table.setHorizontalHeaderLabels(["Group", "Action", "Keys / gesture"])
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(text))
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        lay.addWidget(QLabel("Every edit re-runs the refinement in the background; Esc cancels it."))
        lay.addWidget(table)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        box.rejected.connect(self.reject)
        lay.addWidget(box)
        self._fit(table)

    def _fit(self, table: QTableWidget) -> None:
        """Sized to the table's content (no scroll bar when the screen is tall enough)."""
        table.resizeColumnsToContents()
        table.resizeRowsToContents()
        width = sum(table.columnWidth(c) for c in range(table.columnCount())) + 2 * table.frameWidth()
        height = (table.horizontalHeader().height() + sum(table.rowHeight(r) for r in range(table.rowCount()))
                  + 2 * table.frameWidth())
        table.setMinimumWidth(width + table.verticalScrollBar().sizeHint().width())
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        extra = self.sizeHint().height() - table.sizeHint().height()
        want_h = height + extra + 20
        if screen is not None:
            want_h = min(want_h, screen.height() - 80)
        self.resize(width + 60, want_h)
