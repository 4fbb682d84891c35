"""Start where the user left off: the folders opened lately (File → Open Recent) and, per folder,
the image last shown; with no folder on the command line the app reopens the last one there."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMenu

from .settings import app_settings, project_key

MAX_RECENT = 10


def recent_folders() -> list[str]:
    """Most recent first (folders that no longer exist included: the menu shows them disabled)."""
    raw = app_settings().value("recent/folders", [])
    if isinstance(raw, str):              # QSettings (INI) gives a lone string for a one-item list
        raw = [raw]
    return [str(f) for f in (raw or []) if f]


def remember_folder(root: str | Path) -> None:
    folders = [str(root)] + [f for f in recent_folders() if f != str(root)]
    app_settings().setValue("recent/folders", folders[:MAX_RECENT])


def clear_recent() -> None:
    app_settings().remove("recent/folders")


def remember_image(root: str | Path, rel: str) -> None:
    app_settings().setValue(project_key(root) + "/last_image", rel)


def last_image(root: str | Path) -> str | None:
    value = app_settings().value(project_key(root) + "/last_image")
    return str(value) if value else None


def first_image(root: str | Path, rels: list[str]) -> str | None:
    """The image to show on opening ``root``: the one last shown there if it is still listed,
    else the first of ``rels`` (the list's order)."""
    last = last_image(root)
    return last if last in rels else (rels[0] if rels else None)


def reopen_last(window) -> bool:
    """Open the most recent folder that still exists (False when there is none)."""
    for folder in recent_folders():
        if Path(folder).is_dir():
            return window.open_folder(folder)
    return False


def install(window, file_menu: QMenu, before) -> QMenu:
    """File → Open Recent (rebuilt each time it opens), inserted before action ``before``; the
    shown image is remembered per folder."""
    menu = QMenu("Open &Recent", file_menu)
    menu.setObjectName("recent_menu")
    file_menu.insertMenu(before, menu)
    menu.aboutToShow.connect(lambda: fill_menu(window, menu))
    fill_menu(window, menu)

    remembered: list = [None]

    def shown() -> None:
        c = window.controller
        rel = c.doc.image_id if c.doc is not None else (c.unreadable[0] if c.unreadable else None)
        if c.project is not None and rel is not None and remembered[0] != (c.project.root, rel):
            remembered[0] = (c.project.root, rel)
            remember_image(c.project.root, rel)

    window.controller.document_shown.connect(shown)
    return menu


def fill_menu(window, menu: QMenu) -> None:
    menu.clear()
    folders = recent_folders()
    for folder in folders:
        act = menu.addAction(folder)
        act.setEnabled(Path(folder).is_dir())
        if not act.isEnabled():
            act.setText(f"{folder} (missing)")
        act.triggered.connect(lambda _checked=False, f=folder: window.open_folder(f))
    if not folders:
        menu.addAction("(no folder opened yet)").setEnabled(False)
    menu.addSeparator()
    menu.addAction("Clear list", lambda: (clear_recent(), fill_menu(window, menu))).setEnabled(bool(folders))
