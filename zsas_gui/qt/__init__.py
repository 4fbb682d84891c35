"""The desktop app (PySide6 only here): main window, canvas, panels, the inference lane.

Import order matters for qtawesome: icons are created only after the QApplication exists.
"""
