"""The app's QSettings (window layout, last folder, chosen models, view preferences)."""

from __future__ import annotations

from PySide6.QtCore import QSettings


def app_settings() -> QSettings:
    """INI-format user settings (tests redirect them with ``QSettings.setPath``)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "zsas-gui", "zsas-gui")
