"""The app's QSettings (window layout, recent folders, chosen models, view preferences), and the
project defaults (parameters, text prompts: stored in the project, older projects' in QSettings)."""

from __future__ import annotations

import logging

from PySide6.QtCore import QSettings

log = logging.getLogger(__name__)


def app_settings() -> QSettings:
    """INI-format user settings (tests redirect them with ``QSettings.setPath``)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "zsas-gui", "zsas-gui")


def project_key(root) -> str:
    import hashlib

    return "projects/" + hashlib.sha1(str(root).encode()).hexdigest()[:16]


def load_defaults(project) -> tuple:
    """(MethodParams, TextPrompts) the images of ``project`` start from: stored in its
    project.json (state/project_defaults.py); a project from before that takes the values last
    saved for its folder in QSettings."""
    from ..state.project_defaults import KEY, load_project_defaults

    if KEY not in project.settings:
        legacy = _legacy_defaults(project.root)
        if legacy is not None:
            return legacy
    return load_project_defaults(project)


def _legacy_defaults(root) -> tuple | None:
    import json

    from ..core.types import MethodParams, TextPrompts

    raw = app_settings().value(project_key(root) + "/defaults")
    if not raw:
        return None
    try:
        d = json.loads(str(raw))
        return MethodParams.from_dict(d["params"]), TextPrompts.from_dict(d["text_prompts"])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable saved parameters for %s: %s", root, exc)
        return None


def save_defaults(project, params, text_prompts) -> str | None:
    """Store the project's defaults in its project.json; returns an error message or None."""
    from ..core.errors import ZsasError
    from ..state.project_defaults import save_project_defaults

    try:
        save_project_defaults(project, params, text_prompts)
    except (OSError, ZsasError) as exc:
        log.warning("could not save the project defaults of %s: %s", project.root, exc)
        return f"could not save the project defaults in {project.store.project_file}: {exc}"
    return None


class ProjectDefaults:
    """The parameters and text prompts the open project's never-edited images start from: read
    with the project, replaced by the last edit of either, written to the project by :meth:`save`
    (with the next save of the documents, not on every slider tick)."""

    def __init__(self) -> None:
        self.value: tuple | None = None     # (MethodParams, TextPrompts)
        self._changed = False

    def load(self, project) -> None:
        self.value, self._changed = load_defaults(project), False

    def remember(self, params, text_prompts) -> None:
        self.value, self._changed = (params, text_prompts), True

    def save(self, project) -> str | None:
        """Store them if they changed since the last save; an error message or None."""
        if not self._changed or self.value is None:
            return None
        self._changed = False
        return save_defaults(project, *self.value)


def restore_window_layout(window, colormap_box) -> None:
    """The geometry, dock layout and colormap ``window`` had when it last closed (a first start:
    1400 x 900)."""
    s = app_settings()
    geo, state = s.value("window/geometry"), s.value("window/state")
    if geo is not None:
        window.restoreGeometry(geo)
    else:
        window.resize(1400, 900)
    if state is not None:
        window.restoreState(state)
    cmap = s.value("view/colormap")
    if cmap:
        colormap_box.setCurrentText(str(cmap))


def save_window_layout(window, colormap_box) -> None:
    """Keep ``window``'s geometry, dock layout and colormap for the next start."""
    s = app_settings()
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState())
    s.setValue("view/colormap", colormap_box.currentText())
    s.sync()
