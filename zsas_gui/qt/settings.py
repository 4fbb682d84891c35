"""The app's QSettings (window layout, last folder, chosen models, view preferences, and the
parameters and text prompts last used in each project)."""

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


def load_defaults(root) -> tuple | None:
    """(MethodParams, TextPrompts) last used in the project at ``root`` (from QSettings), or None."""
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


def save_defaults(root, params, text_prompts) -> None:
    import json


    app_settings().setValue(project_key(root) + "/defaults",
                            json.dumps({"params": params.to_dict(), "text_prompts": text_prompts.to_dict()}))
